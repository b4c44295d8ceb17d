import Foundation
import PoolProtocol
import Testing

/// Every other section of the notebook as a job, end to end through poolctl.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct NotebookJobTests {
    private func run(_ daemon: DaemonHarness, _ arguments: String...) throws -> (JobRecord, JSONValue) {
        let run = try daemon.poolctl(arguments: ["--json", "run"] + arguments)
        #expect(run.status == 0, "\(run.stderr)")
        let job = try run.json(JobRecord.self)
        #expect(job.state == .succeeded, "\(job)")
        #expect(daemon.jobObjectsInUse.isEmpty, "the job's queue is unlinked, its segment unlinked or kept free for reuse")
        return (job, try #require(job.result))
    }

    @Test func prodconsChecksumsHoldForEveryShape() throws {
        let daemon = try DaemonHarness.start(workers: 5)
        defer { try? daemon.stop() }
        for (producers, consumers, batch) in [(1, 1, 1), (2, 3, 1), (3, 2, 1), (2, 2, 8)] {
            let (_, result) = try run(daemon, "prodcons", "--producers", "\(producers)", "--consumers", "\(consumers)",
                                      "--items", "5000", "--batch", "\(batch)")
            let shape = "\(producers)x\(consumers) batch \(batch)"
            #expect(result["checksumOK"] == .bool(true), "\(shape): \(result)")
            #expect(result["produced"]?.intValue == 5000 && result["consumed"]?.intValue == 5000, "\(shape)")
            #expect(result["producedSum"] == result["consumedSum"], "\(shape)")
            guard case .array(let consumerEntries)? = result["consumers"], case .array(let producerEntries)? = result["producers"] else {
                Issue.record("\(shape): no per-worker entries")
                continue
            }
            #expect(producerEntries.count == producers && consumerEntries.count == consumers, "\(shape)")
            #expect(consumerEntries.compactMap { $0["consumed"]?.intValue }.reduce(0, +) == 5000, "\(shape)")
            #expect((result["itemsPerSecond"]?.doubleValue ?? 0) > 0)
            #expect(result["latencyMicros"]?["p50"] != nil && result["occupancy"]?["samples"] != nil)
        }
        try daemon.stop()
    }

    @Test func prodconsTraceHasALinePerOperationWithinCapacity() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (job, result) = try run(daemon, "prodcons", "--items", "20", "--capacity", "3", "--produce-delay", "0..1ms",
                                    "--consume-delay", "0..3ms", "--trace")
        let log = job.log ?? []
        let pattern = /^(Produced|Consumed) (\d+) \(queue length = (\d+)\)$/
        let parsed = log.compactMap { try? pattern.wholeMatch(in: $0) }
        #expect(parsed.count == log.count, "every line has the notebook's form: \(log)")
        #expect(parsed.filter { $0.1 == "Produced" }.count == 20 && parsed.filter { $0.1 == "Consumed" }.count == 20)
        #expect(parsed.allSatisfy { (1...10).contains(Int($0.2)!) && Int($0.3)! <= 3 })
        let consumedSum = parsed.filter { $0.1 == "Consumed" }.map { Int($0.2)! }.reduce(0, +)
        #expect(result["consumedSum"]?.intValue == consumedSum)
        #expect(daemon.log.contains("Produced") && daemon.log.contains("Consumed"), "the trace is in the job's log too")

        let human = try daemon.poolctl("run", "prodcons", "--items", "5", "--produce-delay", "0", "--consume-delay", "0", "--trace")
        #expect(human.status == 0)
        #expect(human.stdout.components(separatedBy: "Consumed ").count - 1 == 5, "\(human.stdout)")
        try daemon.stop()
    }

    @Test func aLongTraceReachesItsFollowerWholeAndIsKeptInPart() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (job, _) = try run(daemon, "prodcons", "--items", "1000", "--produce-delay", "0", "--consume-delay", "0", "--trace")
        #expect(job.log?.count == 2000, "the Run call's last reply has every line")

        let kept = try #require(try daemon.jobRecord(job.id).log)
        #expect(kept.count == 1001)
        #expect(Array(kept.prefix(500)) == Array(job.log!.prefix(500)) && Array(kept.suffix(500)) == Array(job.log!.suffix(500)))
        #expect(kept[500].contains("1000 lines not kept") && kept[500].contains("poolctl logs \(job.id)"), "\(kept[500])")
        let listed = try daemon.client().call(PoolInterface.Method.listJobs.qualifiedName, ListJobsRequest(limit: 10),
                                              returning: ListJobsReply.self)
        #expect(listed.jobs.map(\.id) == [job.id] && listed.jobs[0].log == nil, "a listing leaves logs out")

        let human = try daemon.poolctl("run", "prodcons", "--items", "1000", "--produce-delay", "0", "--consume-delay", "0", "--trace")
        #expect(human.status == 0)
        #expect(human.stdout.components(separatedBy: "Consumed ").count - 1 == 1000, "poolctl prints each line once")
        try daemon.stop()
    }

    @Test func aRunningTracesRecordCarriesItsLatestLinesOnly() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let started = try daemon.poolctl("--json", "run", "prodcons", "--detach", "--items", "4000", "--produce-delay", "0..1ms",
                                         "--consume-delay", "0", "--trace")
        let id = try started.json(JobRecord.self).id
        var running: [JobRecord] = [], final: JobRecord?
        let deadline = Deadline()
        try daemon.client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("following a traced job")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            if job.state.isFinished { final = job } else { running.append(job) }
            return final == nil
        }
        let windows = running.map { (offset: $0.logOffset ?? 0, count: $0.log?.count ?? 0) }
        #expect(windows.allSatisfy { $0.count <= 1000 }, "\(windows)")
        #expect(windows.contains { $0.offset > 0 }, "a window moved on while the job ran: \(windows)")
        #expect(zip(windows, windows.dropFirst()).allSatisfy { $0.offset + $0.count <= $1.offset + $1.count }, "\(windows)")
        #expect(final?.log?.count == 8000 && final?.logOffset == nil)

        // poolctl shows every line, or says how many went by between two replies.
        let shown = try daemon.poolctl("run", "prodcons", "--items", "4000", "--produce-delay", "0..1ms", "--consume-delay", "0", "--trace")
        #expect(shown.status == 0, "\(shown.stderr)")
        let lines = shown.stdout.split(separator: "\n")
        let traced = lines.filter { $0.hasPrefix("Produced ") || $0.hasPrefix("Consumed ") }.count
        let skipped = lines.compactMap { line -> Int? in
            guard line.hasPrefix("... "), line.contains("lines went by") else { return nil }
            return Int(line.dropFirst(4).prefix { $0.isNumber })
        }.reduce(0, +)
        #expect(traced + skipped == 8000, "\(traced) shown, \(skipped) skipped")
        try daemon.stop()
    }

    @Test func prodconsWithoutTraceLogsNothingPerItem() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (job, _) = try run(daemon, "prodcons", "--items", "1000")
        #expect(job.log == nil)
        #expect(!daemon.log.contains("Produced"))
        try daemon.stop()
    }

    @Test func aCapacityAboveMsgMaxIsRefusedNamingTheLimit() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let limit = Int(try String(contentsOfFile: "/proc/sys/fs/mqueue/msg_max", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))!
        let refused = try daemon.poolctl("run", "prodcons", "--capacity", "\(limit + 1)")
        #expect(refused.status == 4)
        #expect(refused.stderr.contains("/proc/sys/fs/mqueue/msg_max = \(limit)"), "\(refused.stderr)")
        let tooBig = try daemon.poolctl("run", "prodcons", "--payload-bytes", "1000000")
        #expect(tooBig.status == 4 && tooBig.stderr.contains("msgsize_max"), "\(tooBig.stderr)")
        #expect(try daemon.status().jobsFinished == 0)
        try daemon.stop()
    }

    @Test func cancellingProdconsWakesBlockedConsumersAndRemovesTheQueue() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // The producer pauses a minute between items: the consumer blocks on the empty queue.
        let run = try daemon.poolctl("--json", "run", "prodcons", "--detach", "--items", "5", "--produce-delay", "60s")
        let job = try run.json(JobRecord.self)
        #expect(try daemon.poolctl("cancel", "\(job.id)").status == 0)
        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .cancelled)
        #expect(daemon.jobObjectsInUse.isEmpty)
        try daemon.waitForStatus { $0.workers.allSatisfy { $0.state == .ready } }
        try daemon.stop()
    }

    @Test func eventWaitersAllReceiveAndTimeoutWaitersCountTimeouts() throws {
        let daemon = try DaemonHarness.start(workers: 3)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "event", "--waiters", "2", "--timeout-waiters", "1", "--wait-timeout", "100ms",
                                  "--set-after", "450ms")
        guard case .array(let waiters)? = result["waiters"] else { Issue.record("no waiters"); return }
        #expect(waiters.count == 3)
        #expect(waiters.allSatisfy { $0["received"] == .bool(true) && $0["wakeLatencyMicros"] != nil })
        let timeoutWaiter = try #require(waiters.first { $0["withTimeout"] == .bool(true) })
        #expect((timeoutWaiter["timeouts"]?.intValue ?? 0) >= 1, "set-after exceeds the timeout")
        #expect(waiters.filter { $0["withTimeout"] == .bool(false) }.allSatisfy { $0["timeouts"]?.intValue == 0 })
        try daemon.stop()
    }

    @Test func tasksCoverEveryIndexOnceEvenWithMoreTasksThanWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 3)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "tasks", "--count", "10")
        guard case .array(let tasks)? = result["tasks"] else { Issue.record("no tasks"); return }
        #expect(tasks.compactMap { $0["index"]?.intValue }.sorted() == Array(0..<10))
        #expect(tasks.allSatisfy { (0..<3).contains($0["slot"]?.intValue ?? -1) })
        #expect(daemon.log.contains("I'm the task 9"))
        try daemon.stop()
    }

    /// As the notebook's ten threads each print their line, the tasks' lines come from every
    /// worker: task i runs on participant i mod n.
    @Test func taskIRunsOnParticipantIModN() throws {
        let daemon = try DaemonHarness.start(workers: 4)
        defer { try? daemon.stop() }
        let (job, result) = try run(daemon, "tasks", "--count", "10", "--workers", "4")
        guard case .array(let tasks)? = result["tasks"] else { Issue.record("no tasks"); return }
        #expect(tasks.count == 10 && job.slots.count == 4)
        for task in tasks {
            let index = try #require(task["index"]?.intValue)
            #expect(task["participant"]?.intValue == index % 4, "\(task)")
            #expect(task["slot"]?.intValue == job.slots[index % 4], "task \(index) ran on the slot of participant \(index % 4): \(task)")
        }
        #expect(Set(tasks.compactMap { $0["slot"]?.intValue }).count == 4, "every worker ran tasks")
        try daemon.stop()
    }

    /// The notebook's first Counter cell: per worker, twice, Sleeping / Waiting for lock / Acquired
    /// lock, then Done; at the end Counter: 4. Streamed to poolctl and in the daemon's log.
    @Test func theCounterCellTracesItsLockAndCountsFour() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (job, result) = try run(daemon, "lockcell", "--pause", "0..50ms")
        #expect(result["counter"]?.intValue == 4 && result["expected"]?.intValue == 4)
        let log = job.log ?? []
        #expect(log.count == 15 && log.last == "Counter: 4", "\(log)")
        let pattern = /^\(slot (\d)\s*\) (Sleeping 0\.\d\d|Waiting for lock|Acquired lock|Done)$/
        var steps: [String: [String]] = [:]
        for line in log.dropLast() {
            guard let match = try? pattern.wholeMatch(in: line) else { Issue.record("not the notebook's form: \(line)"); continue }
            steps[String(match.1), default: []].append(match.2.hasPrefix("Sleeping") ? "Sleeping" : String(match.2))
        }
        let cycle = ["Sleeping", "Waiting for lock", "Acquired lock"]
        #expect(steps.count == 2 && steps.values.allSatisfy { $0 == cycle + cycle + ["Done"] }, "each worker's steps in order: \(steps)")
        #expect(Set(steps.keys) == Set(job.slots.map(String.init)))

        let shown = try daemon.poolctl("run", "lockcell", "--pause", "0..20ms")
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.components(separatedBy: "Acquired lock").count - 1 == 4, "poolctl streams the lines: \(shown.stdout)")
        #expect(shown.stdout.contains("Counter: 4\n") && shown.stdout.contains("counter = 4 (expected 4)"), "\(shown.stdout)")
        #expect(daemon.log.components(separatedBy: "Acquired lock").count - 1 == 8, "the daemon logs every line")
        try daemon.stop()
    }

    @Test func theCounterCellRefusesAWorkerCountAboveThePool() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let refused = try daemon.poolctl("run", "lockcell", "--workers", "3")
        #expect(refused.status == 4 && refused.stderr.contains("3"), "\(refused.stderr)")
        try daemon.stop()
    }

    /// The maximum latency is measured, not a histogram bucket's edge: with four items sent at once
    /// and a consumer that takes 100 ms for each, the last waits at least 300 ms; the percentiles,
    /// bucket bounds, say their resolution.
    @Test func prodconsLatencyMaxIsExactAndPercentilesSayTheirResolution() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "prodcons", "--items", "4", "--produce-delay", "0", "--consume-delay", "100ms")
        let latency = try #require(result["latencyMicros"])
        let max = try #require(latency["max"]?.doubleValue), p99 = try #require(latency["p99"]?.doubleValue)
        #expect(max >= 299_000, "the last item waited for three 100 ms pauses: \(latency)")
        #expect(max > p99 && max < p99 * (1 + 1.0 / 16), "p99 is the lower bound of max's bucket, max itself is exact: \(latency)")
        #expect(latency["percentileResolution"]?.doubleValue == 1.0 / 16)
        let shown = try daemon.poolctl("run", "prodcons", "--items", "4", "--produce-delay", "0", "--consume-delay", "10ms")
        #expect(shown.stdout.contains("(to 6.25%), max ") && shown.stdout.contains("us (exact)"), "\(shown.stdout)")
        try daemon.stop()
    }

    @Test func appendToSharedMemoryInterleavesBothCharacters() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "append", "--chars", "oO", "--counts", "10,20", "--intervals", "3ms,2ms", "--memory", "shared")
        let text = try #require(result["text"]?.stringValue)
        #expect(text.count == 30)
        #expect(text.filter { $0 == "o" }.count == 10 && text.filter { $0 == "O" }.count == 20)
        try daemon.stop()
    }

    @Test func appendDefaultsRepeatTheNotebooksPairForMoreWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 3)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "append", "--workers", "3", "--intervals", "1ms")
        let text = try #require(result["text"]?.stringValue)
        #expect(text.filter { $0 == "o" }.count == 20 && text.filter { $0 == "O" }.count == 20, "o: 10 + 10, O: 20: \(text)")
        try daemon.stop()
    }

    @Test func appendToPrivateMemoryLeavesTheDaemonsCopyEmpty() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (_, result) = try run(daemon, "append", "--counts", "10,20", "--intervals", "1ms,1ms", "--memory", "private")
        #expect(result["daemonCopy"]?.stringValue == "")
        guard case .array(let copies)? = result["copies"] else { Issue.record("no copies"); return }
        #expect(copies.compactMap { $0["text"]?.stringValue } == [String(repeating: "o", count: 10), String(repeating: "O", count: 20)])
        try daemon.stop()
    }
}
