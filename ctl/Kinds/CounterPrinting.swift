import ArgumentParser
import PoolProtocol

enum CounterPrinting: JobKindPrinting {
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
