import Foundation
import PoolProtocol

/// A job for people: its state, then what its kind's result says.
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
        switch job.kind {
        case "counter":
            if let counter = try? result.decode(CounterResult.self) { printCounter(counter) }
        case "prodcons": printProdCons(result)
        case "event": printEvent(result)
        case "tasks": printTasks(result)
        case "append": printAppend(result)
        case "lockcell": Output.line("  counter = \(Int(number(result["counter"]))) (expected \(Int(number(result["expected"]))))")
        default: Output.line("  result: \(result)")
        }
        printDeadWorkers(result)
    }

    /// Workers that died during the job, and what became of their part.
    private func printDeadWorkers(_ result: JSONValue) {
        guard case .array(let dead)? = result["deadWorkers"] else { return }
        for worker in dead {
            let fate = worker["replaced"] == .bool(true) ? "a replacement finished its part" : "its part was not finished"
            Output.line("  worker pid \(Int(number(worker["pid"]))) in slot \(Int(number(worker["slot"]))) died (\(worker["exit"]?.stringValue ?? "?")): \(fate)")
        }
    }

    /// A result's number, within what `Int(_:)` converts without trapping: a record comes from the
    /// daemon's history file, which may hold anything.
    private func number(_ value: JSONValue?) -> Double {
        guard case .number(let number)? = value, number.isFinite else { return 0 }
        return min(max(number, -9.0e18), 9.0e18)
    }

    private func printProdCons(_ result: JSONValue) {
        Output.line("  produced \(Int(number(result["produced"]))) items (sum \(Int(number(result["producedSum"])))), consumed \(Int(number(result["consumed"]))) (sum \(Int(number(result["consumedSum"])))): \(JobRecord.checksumVerdict(result))")
        Output.line("  \(Output.duration(number(result["durationSeconds"]))), \(Output.rate(number(result["itemsPerSecond"]))) items/s; queue found full \(Int(number(result["queueFull"]))) times, empty \(Int(number(result["queueEmpty"]))) times")
        let redelivered = Int(number(result["redelivered"])), resent = Int(number(result["resent"]))
        if redelivered + resent > 0 {
            Output.line("  recovered from dead workers: \(redelivered) items redelivered from a consumer's ledger, \(resent) sent again for a producer")
        }
        if let latency = result["latencyMicros"] {
            let parts = ["p50", "p90", "p99"].map { "\($0) \(String(format: "%.1f", number(latency[$0])))us" }
            let resolution = latency["percentileResolution"].map { String(format: " (to %g%%)", number($0) * 100) } ?? ""
            Output.line("  enqueue-to-dequeue latency: " + parts.joined(separator: ", ") + resolution
                        + String(format: ", max %.1fus (exact)", number(latency["max"])))
        }
        if case .array(let samples)? = result["occupancy"]?["samples"], !samples.isEmpty {
            let capacity = max(number(result["occupancy"]?["capacity"]), 1)
            Output.line("  queue occupancy: " + Self.sparkline(samples.map { number($0) / capacity }))
        }
        for (role, key) in [("producer", "produced"), ("consumer", "consumed")] {
            guard case .array(let entries)? = result[role + "s"] else { continue }
            for entry in entries {
                Output.line("  \(role) on slot \(Int(number(entry["slot"]))): \(key) \(Int(number(entry[key]))), sum \(Int(number(entry["sum"])))")
            }
        }
    }

    /// Values in 0...1 as a line of block characters.
    static func sparkline(_ values: [Double]) -> String {
        let blocks = Array("▁▂▃▄▅▆▇█")
        let step = max(1, values.count / 60)
        return String(stride(from: 0, to: values.count, by: step).map { index in
            let level = values[index] * Double(blocks.count - 1) + 0.5
            return blocks[level.isFinite ? Int(min(max(level, 0), Double(blocks.count - 1))) : 0]
        })
    }

    private func printEvent(_ result: JSONValue) {
        Output.line("  event set after \(result["setAfter"]?.stringValue ?? "?"); timeout waiters wait \(result["timeout"]?.stringValue ?? "?") at a time")
        guard case .array(let waiters)? = result["waiters"] else { return }
        for waiter in waiters {
            let kind = waiter["withTimeout"] == .bool(true) ? "timeout waiter" : "waiter"
            let received = waiter["received"] == .bool(true)
            var line = "  \(kind) on slot \(Int(number(waiter["slot"]))): received event \(received ? "True" : "False")"
            if waiter["withTimeout"] == .bool(true) { line += ", \(Int(number(waiter["timeouts"]))) timeouts" }
            if waiter["wakeLatencyMicros"] != nil { line += String(format: ", woke %.0fus after the set", number(waiter["wakeLatencyMicros"])) }
            Output.line(line)
        }
    }

    private func printTasks(_ result: JSONValue) {
        guard case .array(let tasks)? = result["tasks"] else { return }
        for task in tasks {
            Output.line("  I'm the task \(Int(number(task["index"]))) (slot \(Int(number(task["slot"]))), waited \(Int(number(task["waitMicros"])))us)")
        }
    }

    private func printAppend(_ result: JSONValue) {
        if result["memory"]?.stringValue == "shared" {
            Output.line("  shared string: \(result["text"]?.stringValue ?? "") (length \(Int(number(result["length"]))) of \(Int(number(result["expectedLength"]))))")
            return
        }
        if case .array(let copies)? = result["copies"] {
            for copy in copies {
                Output.line("  slot \(Int(number(copy["slot"])))'s own copy: \(copy["text"]?.stringValue ?? "")")
            }
        }
        Output.line("  the daemon's copy: \"\(result["daemonCopy"]?.stringValue ?? "")\" (nobody could append to it)")
    }

    private func printCounter(_ result: CounterResult) {
        Output.line("  counter = \(result.actual) (expected \(result.expected), start \(result.start), mode \(result.mode.rawValue))")
        let split = result.lostIncrements.map { " (\($0) increments, \(result.lostDecrements ?? 0) decrements)" } ?? ""
        Output.line("  lost updates: \(result.lost)\(split)\(result.lockRecoveries > 0 ? ", lock recovered from a dead holder \(result.lockRecoveries) times" : "")")
        Output.line("  \(result.operations) operations in \(Output.duration(result.durationSeconds)), \(Output.rate(result.opsPerSecond)) ops/s")
        for worker in result.workers {
            let sign = worker.delta > 0 ? "+1" : "-1"
            Output.line("  slot \(worker.slot) (pid \(worker.pid)): \(sign) x \(worker.operations) in \(Output.duration(worker.durationSeconds))")
        }
    }
}
