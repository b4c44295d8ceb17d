import Foundation
import PoolProtocol

/// A job for people: its state, then what its kind's result says (each kind's printing is in ctl/Kinds/).
struct JobPrinter {
    let json: Bool
    /// Whether to print the job's log lines (a trace); `run` has streamed them already.
    var showLog = false

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
        if showLog { for line in job.log ?? [] { Output.line("  " + line) } }
        if let waiting = job.waiting { Output.line("  \(waiting)") }
        if let error = job.error { Output.line("  \(job.state == .cancelled || job.state == .interrupted ? "why" : "error"): \(error)") }
        guard let result = job.result else { return }
        let lines = PoolctlJobKinds.kind(named: job.kind)?.lines(decoding: result) ?? ["  result: \(result)"]
        lines.forEach(Output.line)
        printDeadWorkers(result)
    }

    /// Workers that died during the job, and what became of their part.
    private func printDeadWorkers(_ result: JSONValue) {
        for worker in (try? result.decode(DeadWorkersOfJob.self))?.deadWorkers ?? [] {
            let fate = worker.replaced ? "a replacement finished its part" : "its part was not finished"
            Output.line("  worker pid \(worker.pid) in slot \(worker.slot) died (\(worker.exit)): \(fate)")
        }
    }
}
