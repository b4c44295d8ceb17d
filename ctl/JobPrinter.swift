import Foundation
import PoolProtocol

/// A job for people: its state, then what its kind's result says.
struct JobPrinter {
    let json: Bool

    func print(_ job: JobRecord) {
        if json {
            Output.json(job)
            return
        }
        var heading = "job \(job.id) \(job.kind) \(job.state.rawValue)"
        if let progress = job.progress, job.state == .running, progress.total > 0 {
            heading += String(format: " (%.0f%%)", Double(progress.done) * 100 / Double(progress.total))
        }
        Output.line(heading)
        if let error = job.error { Output.line("  \(job.state == .cancelled ? "why" : "error"): \(error)") }
        if let result = job.result, job.kind == "counter", let counter = try? result.decode(CounterResult.self) {
            printCounter(counter)
        } else if let result = job.result {
            Output.line("  result: \(result)")
        }
    }

    private func printCounter(_ result: CounterResult) {
        Output.line("  counter = \(result.actual) (expected \(result.expected), start \(result.start), mode \(result.mode.rawValue))")
        Output.line("  lost updates: \(result.lost)\(result.lockRecoveries > 0 ? ", lock recovered from a dead holder \(result.lockRecoveries) times" : "")")
        Output.line("  \(result.operations) operations in \(Output.duration(result.durationSeconds)), \(Output.rate(result.opsPerSecond)) ops/s")
        for worker in result.workers {
            let sign = worker.delta > 0 ? "+1" : "-1"
            Output.line("  slot \(worker.slot) (pid \(worker.pid)): \(sign) x \(worker.operations) in \(Output.duration(worker.durationSeconds))")
        }
    }

    /// One line for `poolctl jobs`.
    static func summary(_ job: JobRecord) -> String {
        if let error = job.error { return error }
        if job.kind == "counter", let result = try? job.result?.decode(CounterResult.self) {
            return "\(result.mode.rawValue): counter = \(result.actual), expected \(result.expected), lost \(result.lost)"
        }
        if let progress = job.progress { return "\(progress.done)/\(progress.total)" }
        return ""
    }
}
