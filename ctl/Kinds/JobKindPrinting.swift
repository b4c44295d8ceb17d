import ArgumentParser
import PoolProtocol

/// What poolctl knows of one job kind: its `run` subcommand, how it prints the kind's result and
/// what the kind adds to the live progress line. A kind is one file in ctl/Kinds/ and a line in
/// `JobKindPrinters.all`.
protocol JobKindPrinting {
    associatedtype Result: JobResult
    /// `poolctl run KIND`.
    static var command: any ParsableCommand.Type { get }
    /// The result's lines, below the job's heading.
    static func lines(_ result: Result) -> [String]
    /// Figures the kind shows live beside the progress bar ("queue 3/10").
    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String]
}

extension JobKindPrinting {
    static var kind: String { Result.kind }

    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String] { [] }

    /// The lines of a record's result, or nil when it is not this kind's result (a record from a
    /// damaged history file).
    static func lines(decoding result: JSONValue) -> [String]? {
        (try? result.decode(Result.self)).map(lines)
    }
}

enum JobKindPrinters {
    /// In the order `poolctl run --help` lists the kinds.
    static var all: [any JobKindPrinting.Type] { [
        CounterPrinting.self, ProdConsPrinting.self, EventPrinting.self, TasksPrinting.self, AppendPrinting.self,
        LockCellPrinting.self,
    ] }

    static func printer(ofKind kind: String) -> (any JobKindPrinting.Type)? {
        all.first { $0.kind == kind }
    }
}
