import Foundation
import PoolIPC
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Faults in the workers: killed consumers, producers and lock holders, crash loops, hangs, job
/// timeouts. Each test runs the real daemon and asserts the exact outcome: checksums and counts,
/// the states, and (in `stop`) that no IPC object and no process is left.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct WorkerFaultTests {
    /// Submits a job without waiting for it.
    private func submit(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue], timeout: String? = nil) throws -> Int {
        let reply = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                             RunRequest(kind: kind, parameters: .object(parameters), detach: true, timeout: timeout),
                                             returning: JobReply.self)
        return reply.job.id
    }

    private func number(_ value: JSONValue?) -> Int { value?.intValue ?? -1 }

    private func deadWorkers(_ job: JobRecord) -> [JSONValue] {
        if case .array(let dead)? = job.result?["deadWorkers"] { return dead }
        return []
    }

    private func expectExactProdCons(_ job: JobRecord, items: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let result = job.result
        #expect(job.state == .succeeded, "\(job.error ?? "")", sourceLocation: sourceLocation)
        #expect(number(result?["produced"]) == items && number(result?["consumed"]) == items, sourceLocation: sourceLocation)
        #expect(number(result?["producedSum"]) == number(result?["consumedSum"]), sourceLocation: sourceLocation)
        #expect(result?["checksumOK"] == .bool(true), sourceLocation: sourceLocation)
    }

    @Test func aConsumerKilledWithAMessageInHandIsReplacedAndTheMessageRedelivered() throws {
        // The first consumer dies right after taking its 50th message off the queue, before it
        // counted it: only the ledger in the job's segment still has those 4 items.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--fault", "die-consuming=50"])
        defer { try? daemon.stop() }
        // 50,000 messages: however the two consumers share them (a loaded machine may run one far
        // more than the other), the first one reaches its 50th.
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(2), "items": .number(200_000),
                                                 "batch": .number(4)])
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: 200_000)
        #expect(number(job.result?["redelivered"]) == 4, "\(String(describing: job.result))")
        let dead = deadWorkers(job)
        #expect(dead.count == 1)
        #expect(dead.first?["replaced"] == .bool(true) && number(dead.first?["participant"]) == 1)
        #expect(dead.first?["exit"]?.stringValue?.contains("signal 9") == true)
        let slot = try daemon.status().workers.first { $0.slot == number(dead.first?["slot"]) }
        #expect(slot?.restarts == 1 && slot?.state == .ready)
        try daemon.stop()
    }

    @Test func aConsumerKilledAtARandomMomentLosesNothing() throws {
        let daemon = try DaemonHarness.start(workers: 3)
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(2), "items": .number(Double(items))])
        try daemon.waitForProgress(job: id, atLeast: items / 4)
        let status = try daemon.status()
        let consumerSlot = try #require(try daemon.jobRecord(id).slots.last)
        let victim = try #require(status.workers.first { $0.slot == consumerSlot })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: items)
        #expect(deadWorkers(job).count == 1 && number(deadWorkers(job).first?["pid"]) == victim.pid)
        try daemon.stop()
    }

    @Test func aProducerKilledAfterSendingButBeforeCountingIsSettledExactly() throws {
        // The producer dies between a successful send and recording it: its replacement cannot
        // know whether the message is in the queue, so it settles that at the end, once quiet.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--fault", "die-producing=30"])
        defer { try? daemon.stop() }
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(2), "items": .number(5_000)])
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: 5_000)
        #expect(number(job.result?["resent"]) == 0, "the message had reached the queue; sending it again would duplicate it")
        #expect(deadWorkers(job).count == 1 && number(deadWorkers(job).first?["participant"]) == 0)
        #expect(daemon.log.contains("settling it at the end"))
        try daemon.stop()
    }

    @Test func theSameProducerKilledTwiceStillHasEveryItemConsumedOnce() throws {
        // The producer dies between a send and recording it: its replacement cannot know whether
        // that message is in the queue, parks it and goes on, recording what it sends. Then the
        // replacement is killed too, at a random moment: the next one finds both records intact
        // and settles the parked message at the end.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--fault", "die-producing=30"])
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(2), "items": .number(Double(items))])
        let producerSlot = try #require(try daemon.jobRecord(id).slots.first)
        let replacement = try daemon.waitForStatus { status in
            status.workers.contains { $0.slot == producerSlot && $0.restarts == 1 && $0.state == .busy && $0.job == id }
        }.workers.first { $0.slot == producerSlot }!
        try daemon.waitForProgress(job: id, atLeast: items / 2)
        #expect(kill(Int32(replacement.pid), SIGKILL) == 0)
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: items)
        let dead = deadWorkers(job)
        #expect(dead.count == 2 && dead.allSatisfy { number($0["participant"]) == 0 && $0["replaced"] == .bool(true) }, "\(dead)")
        #expect(number(dead.last?["pid"]) == replacement.pid)
        #expect(job.result?["unsettled"] == nil)
        try daemon.stop()
    }

    @Test func aProducerKilledAtARandomMomentIsReplaced() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(1), "items": .number(Double(items))])
        try daemon.waitForProgress(job: id, atLeast: items / 4)
        let producerSlot = try #require(try daemon.jobRecord(id).slots.first)
        let victim = try #require(try daemon.status().workers.first { $0.slot == producerSlot })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: items)
        #expect(deadWorkers(job).count == 1)
        try daemon.stop()
    }

    @Test func killingAProducerAndAConsumerOfAWiderJobStillConsumesEveryItemOnce() throws {
        let daemon = try DaemonHarness.start(workers: 4)
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(2), "consumers": .number(2), "items": .number(Double(items)),
                                                 "batch": .number(3)])
        try daemon.waitForProgress(job: id, atLeast: items / 3)
        let slots = try daemon.jobRecord(id).slots
        let workers = try daemon.status().workers
        let victims = [slots[1], slots[2]].compactMap { slot in workers.first { $0.slot == slot }?.pid }
        #expect(victims.count == 2)
        for victim in victims { #expect(kill(Int32(victim), SIGKILL) == 0) }
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: items)
        #expect(Set(deadWorkers(job).map { number($0["pid"]) }) == Set(victims))
        try daemon.stop()
    }

    @Test func theLockHolderKilledInsideTheLockLeavesAnExactCount() throws {
        // Participant 0 dies holding the mutex, its update made but not counted. The next locker
        // gets EOWNERDEAD, settles the intent record and the replacement finishes the share.
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--fault", "die-holding-lock=200000"])
        defer { try? daemon.stop() }
        let id = try submit(daemon, "counter", ["mode": .string("locked"), "iterations": .number(1_000_000)])
        let job = try daemon.waitForJob(id)
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        let result = try #require(try job.result?.decode(CounterResult.self))
        #expect(result.actual == result.start - 1 && result.expected == result.actual && result.lost == 0, "\(result)")
        #expect(result.operations == 2_000_001)
        #expect(result.lockRecoveries == 1)
        #expect(deadWorkers(job).count == 1 && deadWorkers(job).first?["replaced"] == .bool(true))
        try daemon.stop()
    }

    /// The stores of the locked counter's critical section (`FaultInjection.LockStep`), in order.
    static let lockSteps = ["locked", "intent-before", "intent-done", "intent-marked", "counter", "count", "intent-cleared"]

    @Test(arguments: lockSteps)
    func theLockHolderKilledAfterAnyStoreOfTheCriticalSectionLeavesAnExactCount(step: String) throws {
        // Participant 0 dies at its first update, right after `step`: the intent record then holds
        // either nothing of this update or all of it, never the other worker's (or the initial)
        // values, which would set participant 0's count from them.
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--fault", "die-holding-lock=0@\(step)"])
        defer { try? daemon.stop() }
        let iterations = 200_000
        let id = try submit(daemon, "counter", ["mode": .string("locked"), "iterations": .number(Double(iterations)),
                                                "split": .bool(false)])
        let job = try daemon.waitForJob(id)
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        let result = try #require(try job.result?.decode(CounterResult.self))
        #expect(result.actual == result.start + 2 * iterations && result.expected == result.actual && result.lost == 0, "\(result)")
        #expect(result.operations == 2 * iterations, "\(result)")
        #expect(result.workers.map(\.operations) == [iterations, iterations], "\(result.workers)")
        #expect(result.lockRecoveries == 1, "the next locker found the mutex's owner dead: \(result)")
        #expect(deadWorkers(job).count == 1 && deadWorkers(job).first?["replaced"] == .bool(true))
        try daemon.stop()
    }

    @Test func anUnknownLockStepIsRefusedWithTheStepsThereAre() throws {
        let run = try runProgram(Binaries.poold, ["--fault", "die-holding-lock=3@nowhere"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("die-holding-lock=N@locked|intent-before"), "\(run.stderr)")
    }

    @Test func aCrashLoopBacksOffExponentiallyAndFailsTheSlotWhileOthersWork() throws {
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--fault", "crash-at-start=1"], followNotifications: true)
        defer { try? daemon.stop() }
        let status = try daemon.waitForStatus { $0.workers.first { $0.slot == 1 }?.state == .failed }
        let slot1 = try #require(status.workers.first { $0.slot == 1 })
        // failureLimit 5: the first start and four respawns, each dying.
        #expect(slot1.restarts == 4 && slot1.pid == 0)
        #expect(slot1.lastExit?.contains("signal 9") == true)
        // Backoff: base 100 ms doubling, times a jitter of 0.5 to 1.
        let delays = daemon.log.split(separator: "\n").filter { $0.contains("; respawning in ") && $0.contains("slot=1") }
            .compactMap { line in line.split(separator: " ").first { $0.hasPrefix("delayMillis=") }.flatMap { Int($0.dropFirst(12)) } }
        #expect(delays.count == 4, "\(delays)")
        for (attempt, delay) in delays.enumerated() {
            let ceiling = 100 << attempt
            #expect(delay >= ceiling / 2 - 1 && delay <= ceiling, "delay \(attempt): \(delay) ms")
        }
        // systemd hears of it.
        var line: String?
        while let message = daemon.nextNotification(timeoutSeconds: 10) {
            if message.contains("STATUS=") && message.contains("1 slots failed") { line = message; break }
        }
        #expect(line?.contains("1/2 workers up") == true, "\(String(describing: line))")
        // poolctl says so too, and the other slot still works.
        let shown = try daemon.poolctl("status")
        #expect(shown.stdout.contains("failed"), "\(shown.stdout)")
        let run = try daemon.poolctl("run", "counter", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(run.status == 0, "\(run.stderr)")
        try daemon.stop()
    }

    @Test func aHungWorkerIsKilledAndItsJobPartTakenOver() throws {
        // SIGSTOP is a real hang: the worker stops beating. The consumer's part goes to a new worker.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--heartbeat-timeout", "500ms"])
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(2), "items": .number(Double(items))])
        try daemon.waitForProgress(job: id, atLeast: items / 4)
        let consumerSlot = try #require(try daemon.jobRecord(id).slots.last)
        let victim = try #require(try daemon.status().workers.first { $0.slot == consumerSlot })
        #expect(kill(Int32(victim.pid), SIGSTOP) == 0)
        let job = try daemon.waitForJob(id)
        expectExactProdCons(job, items: items)
        let dead = deadWorkers(job)
        #expect(dead.count == 1 && number(dead.first?["pid"]) == victim.pid)
        #expect(dead.first?["exit"]?.stringValue?.contains("hung (no heartbeat") == true, "\(dead)")
        let slot = try #require(try daemon.status().workers.first { $0.slot == consumerSlot })
        #expect(slot.lastExit?.contains("hung") == true)
        try daemon.stop()
    }

    @Test func anIdleHungWorkerIsRespawned() throws {
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--heartbeat-timeout", "300ms"])
        defer { try? daemon.stop() }
        let victim = try #require(try daemon.status().workers.first)
        #expect(kill(Int32(victim.pid), SIGSTOP) == 0)
        let after = try daemon.waitForStatus { $0.workers.first?.restarts == 1 && $0.workers.first?.state == .ready }
        #expect(after.workers.first?.lastExit?.contains("hung") == true)
        #expect(kill(Int32(victim.pid), 0) == -1)
        try daemon.stop()
    }

    @Test func aJobTimeoutFailsTheJobWithAnExactAccount() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("--json", "run", "counter", "--mode", "locked", "--iterations", "2000000000", "--timeout", "300ms")
        #expect(run.status != 0)
        let job = try run.json(JobRecord.self)
        #expect(job.state == .failed)
        #expect(job.error?.contains("timed out") == true, "\(job.error ?? "")")
        let result = try #require(try job.result?.decode(CounterResult.self))
        #expect(result.operations > 0 && result.operations < 4_000_000_001)
        #expect(result.actual == result.expected, "the account of a stopped locked counter is exact: \(result)")
        let bad = try daemon.poolctl("run", "counter", "--timeout", "soon")
        #expect(bad.status == 2 && bad.stderr.contains("--timeout"), "\(bad.stderr)")
        try daemon.stop()
    }

    @Test func aWorkerSideFailureReachesTheJobWithItsReason() throws {
        // The job's queue is removed behind the daemon's back, then a consumer is killed: its
        // replacement cannot open the queue, and the job's error says so (not "an error").
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let items = 1_000_000
        let id = try submit(daemon, "prodcons", ["producers": .number(1), "consumers": .number(1), "items": .number(Double(items))])
        try daemon.waitForProgress(job: id, atLeast: items / 10)
        let queue = daemon.prefix + ".job\(id).queue"
        #expect(MessageQueue.unlink(name: queue))
        let consumerSlot = try #require(try daemon.jobRecord(id).slots.last)
        let victim = try #require(try daemon.status().workers.first { $0.slot == consumerSlot })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        let job = try daemon.waitForJob(id)
        #expect(job.state == .failed)
        let error = job.error ?? ""
        #expect(error.contains("participant 1 (slot \(consumerSlot)") && error.contains("cannot open the job's queue")
                && error.contains(queue) && error.contains("No such file or directory"), "\(error)")
        try daemon.stop()
    }

    @Test func aKindThatCannotResumeFailsWithAnAccountWhenItsWorkerDies() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let id = try submit(daemon, "event", ["waiters": .number(1), "timeoutWaiters": .number(1), "setAfter": .string("60s")])
        let running = try daemon.waitForStatus { status in status.workers.filter { $0.job == id }.count == 2 }
        let victim = try #require(running.workers.first { $0.job == id })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        let job = try daemon.waitForJob(id)
        #expect(job.state == .failed)
        #expect(job.error?.contains("pid \(victim.pid)") == true, "\(job.error ?? "")")
        #expect(deadWorkers(job).first?["replaced"] == .bool(false))
        try daemon.stop()
    }
}
