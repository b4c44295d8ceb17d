import ArgumentParser
import PoolProtocol

enum CounterKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { CounterCommand.self }

    static func lines(_ result: CounterResult) -> [String] {
        let split = result.lostIncrements.map { " (\($0) increments, \(result.lostDecrements ?? 0) decrements)" } ?? ""
        let recoveries = result.lockRecoveries > 0 ? ", lock recovered from a dead holder \(result.lockRecoveries) times" : ""
        return [
            "  counter = \(result.actual) (expected \(result.expected), start \(result.start), mode \(result.mode.rawValue))",
            "  lost updates: \(result.lost)\(split)\(recoveries)",
            "  \(result.operations) operations in \(Output.duration(result.durationSeconds)), \(Output.rate(result.opsPerSecond)) ops/s",
        ] + result.workers.map { worker in
            "  slot \(worker.slot) (pid \(worker.pid)): \(worker.delta > 0 ? "+1" : "-1") x \(worker.operations) in \(Output.duration(worker.durationSeconds))"
        }
    }
}

struct CounterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counter",
        abstract: "The notebook's counter race: workers update one shared counter.",
        discussion: """
            unsafe: a separate load and store per update, so concurrent updates get lost. \
            locked: each update under a process-shared robust mutex (the notebook's Lock). \
            atomic: one atomic fetch-add per update. \
            With --split (the default) half the workers add 1 and half subtract 1, the last one once more, so a correct run \
            ends at start - 1.

            Examples:
              poolctl run counter --mode unsafe
              poolctl run counter --mode locked --iterations 10000000 --start -5
              poolctl run counter --detach --mode atomic --workers 4 --no-split
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions

    @Option(help: "unsafe, locked or atomic (default: locked).")
    var mode: CounterMode?

    @Option(parsing: .unconditional, help: "Worker processes to run on (default: 2).")
    var workers: Int?

    @Option(parsing: .unconditional, help: "Updates per worker (default: 1000000).")
    var iterations: Int?

    @Option(parsing: .unconditional, help: "The counter's start value (default: 10).")
    var start: Int?

    @Flag(inversion: .prefixedNo, help: "Half the workers subtract (default: on).")
    var split: Bool?

    func validate() throws {
        try OptionChecks.atLeast(1, workers, "--workers")
        try OptionChecks.atLeast(0, iterations, "--iterations")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("mode", mode?.rawValue)
        parameters.set("workers", workers)
        parameters.set("iterations", iterations)
        parameters.set("start", start)
        parameters.set("split", split)
        try JobRunner(global: global, options: options).run(kind: CounterResult.kind, parameters: parameters.object)
    }
}

extension CounterMode: ExpressibleByArgument {}
