import ArgumentParser
import PoolProtocol

/// What poolctl knows of one job kind: its `run` subcommand (options, help, the parameters it
/// sends), how it prints the kind's result and what the kind adds to the live progress line. A
/// kind is one file in ctl/Kinds/ and a line in `PoolctlJobKinds.all`.
protocol PoolctlJobKind {
    associatedtype Result: JobResult
    /// `poolctl run KIND`.
    static var command: any ParsableCommand.Type { get }
    /// The result's lines, below the job's heading.
    static func lines(_ result: Result) -> [String]
    /// Figures the kind shows live beside the progress bar ("queue 3/10").
    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String]
}

extension PoolctlJobKind {
    static var kind: String { Result.kind }

    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String] { [] }

    /// The lines of a record's result, or nil when it is not this kind's result (a record from a
    /// damaged history file).
    static func lines(decoding result: JSONValue) -> [String]? {
        (try? result.decode(Result.self)).map(lines)
    }
}

enum PoolctlJobKinds {
    /// In the order `poolctl run --help` lists the kinds.
    static var all: [any PoolctlJobKind.Type] { [
        CounterKind.self, ProdConsKind.self, EventKind.self, TasksKind.self, AppendKind.self, LockCellKind.self,
    ] }

    static func kind(named name: String) -> (any PoolctlJobKind.Type)? {
        all.first { $0.kind == name }
    }
}
