import ArgumentParser
import PoolProtocol

enum AppendKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { AppendCommand.self }

    static func lines(_ result: AppendResult) -> [String] {
        switch result.memory {
        case .shared:
            return ["  shared string: \(result.text ?? "") (length \(result.length ?? 0) of \(result.expectedLength ?? 0))"]
        case .private:
            return (result.copies ?? []).map { "  slot \($0.slot)'s own copy: \($0.text)" }
                + ["  the daemon's copy: \"\(result.daemonCopy ?? "")\" (nobody could append to it)"]
        }
    }
}

struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "The notebook's section 2: workers append characters to a shared string, or to private copies.",
        discussion: """
            Examples:
              poolctl run append --memory private
              poolctl run append --chars oO --counts 10,20 --intervals 1s,600ms --memory shared
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Workers (default 2).") var workers: Int?
    @Option(help: "One character per worker, or one for all (default oO, repeated for more workers).") var chars: String?
    @Option(help: "Appends per worker, comma-separated, or one for all (default 10,20, repeated).") var counts: String?
    @Option(help: "Pause between appends per worker, or one for all (default 1s,600ms, repeated).") var intervals: String?
    @Option(help: "shared (one string, under a lock) or private (a copy each) (default shared).") var memory: String?

    func validate() throws {
        try OptionChecks.atLeast(1, workers, "--workers")
        if let memory, !["shared", "private"].contains(memory) {
            throw ValidationError("--memory must be shared or private, not '\(memory)'")
        }
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("workers", workers)
        parameters.set("chars", chars)
        parameters.set("counts", counts)
        parameters.set("intervals", intervals)
        parameters.set("memory", memory)
        try JobRunner(global: global, options: options).run(kind: AppendResult.kind, parameters: parameters.object)
    }
}
