import ArgumentParser
import PoolProtocol

enum LockCellKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { LockCellCommand.self }

    static func lines(_ result: LockCellResult) -> [String] {
        ["  counter = \(result.counter) (expected \(result.expected))"]
    }
}

struct LockCellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockcell",
        abstract: "The notebook's first Counter cell: workers sleep, wait for the lock, increment under it, twice.",
        discussion: """
            Each step is a line, as the notebook logs it (Sleeping 0.42, Waiting for lock, Acquired lock, Done), then Counter: 4.

            Examples:
              poolctl run lockcell
              poolctl run lockcell --workers 4 --increments 3 --pause 0..200ms
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Workers (default 2).") var workers: Int?
    @Option(parsing: .unconditional, help: "Increments per worker (default 2).") var increments: Int?
    @Option(help: "Sleep before each increment, a duration or range (default 0..1s).") var pause: String?
    @Option(parsing: .unconditional, help: "Seed of the sleeps (default: a new one each run, shown in the job's parameters).") var seed: Int?

    func validate() throws {
        try OptionChecks.atLeast(1, workers, "--workers")
        try OptionChecks.atLeast(1, increments, "--increments")
        try OptionChecks.durationOrRange(pause, "--pause")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("workers", workers)
        parameters.set("increments", increments)
        parameters.set("pause", pause)
        parameters.set("seed", seed)
        try JobRunner(global: global, options: options).run(kind: LockCellResult.kind, parameters: parameters.object)
    }
}
