import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(3)))
struct SchedulingTests {
    private func detach(_ daemon: DaemonHarness, _ arguments: [String]) throws -> JobRecord {
        let run = try daemon.poolctl(arguments: ["--json", "run", "counter", "--detach"] + arguments)
        #expect(run.status == 0, "\(run.stderr)")
        return try run.json(JobRecord.self)
    }

    /// Submits a counter job detached, straight over the socket (microseconds apart, unlike poolctl).
    private func submit(_ daemon: DaemonHarness, _ parameters: [String: JSONValue]) throws -> JobRecord {
        let request = RunRequest(kind: "counter", parameters: .object(parameters), detach: true)
        return try daemon.client().call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job
    }

    @Test func twoJobsRunAtOnceOnDisjointWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 4)
        defer { try? daemon.stop() }
        // Each takes well over the few microseconds between the two submissions. Followed, not
        // detached: a detached job starts once its record is written, which a busy machine delays.
        let long: [String: JSONValue] = ["mode": .string("locked"), "workers": .number(2), "iterations": .number(3_000_000)]
        let firstRun = try PendingRun(daemon, kind: "counter", parameters: long)
        let secondRun = try PendingRun(daemon, kind: "counter", parameters: long)
        let first = try firstRun.started(), second = try secondRun.started()
        #expect(first.state == .running && second.state == .running)
        #expect(Set(first.slots).isDisjoint(with: second.slots))

        let firstDone = try firstRun.finalRecord()
        let secondDone = try secondRun.finalRecord()
        for job in [firstDone, secondDone] {
            #expect(job.state == .succeeded)
            let result = try #require(job.result).decode(CounterResult.self)
            #expect(result.actual == 9 && result.lost == 0)
        }
        try daemon.stop()
    }

    @Test func queuedJobsWaitTheirTurnInOrder() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // The first job holds both workers until it is cancelled.
        let first = try detach(daemon, ["--mode", "atomic", "--iterations", "10000000000"])
        let second = try detach(daemon, ["--mode", "atomic", "--iterations", "1000"])
        let third = try detach(daemon, ["--mode", "atomic", "--iterations", "1000"])
        #expect(first.state == .running)
        #expect(second.state == .queued && third.state == .queued)
        #expect(try daemon.status().jobsQueued == 2)

        #expect(try daemon.poolctl("cancel", "\(first.id)").status == 0)
        #expect(try daemon.waitForJob(first.id).state == .cancelled)
        let done = try [second, third].map { try daemon.waitForJob($0.id) }
        #expect(done.allSatisfy { $0.state == .succeeded })
        let starts = done.compactMap(\.startedAt)
        #expect(starts.count == 2 && starts == starts.sorted(), "FIFO: the queued jobs started in submission order")
        try daemon.stop()
    }

    @Test func cancelStopsARunningJobAndFreesItsWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let job = try detach(daemon, ["--mode", "atomic", "--iterations", "10000000000"])
        #expect(job.state == .running)

        let cancel = try daemon.poolctl("--json", "cancel", "\(job.id)")
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .cancelled)
        #expect(final.error?.contains("cancelled") == true)
        let result = try #require(final.result).decode(CounterResult.self)
        #expect(result.operations > 0 && result.operations < 20_000_000_000)
        #expect(result.actual == result.expected, "atomic updates stay exact up to the cancellation")
        #expect(daemon.jobObjectsInUse.isEmpty, "the job's segment is gone or kept free for reuse")

        let status = try daemon.waitForStatus { $0.workers.allSatisfy { $0.state == .ready } }
        #expect(status.workers.count == 2)
        let shown = try daemon.poolctl("job", "\(job.id)")
        #expect(shown.status == 0 && shown.stdout.contains("cancelled"))
        let waited = try daemon.poolctl("job", "\(job.id)", "--wait")
        #expect(waited.status == 1, "waiting on a cancelled job exits 1")
        try daemon.stop()
    }

    @Test func aCancelledProdConsAccountsForItsItemsWithoutCallingItAMismatch() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let started = try daemon.poolctl("--json", "run", "prodcons", "--detach", "--items", "1000000000")
        #expect(started.status == 0, "\(started.stderr)")
        let job = try started.json(JobRecord.self)
        try daemon.waitForProgress(job: job.id, atLeast: 1)
        #expect(try daemon.poolctl("cancel", "\(job.id)").status == 0)

        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .cancelled)
        let result = try #require(final.result)
        let produced = try #require(result["produced"]?.intValue), consumed = try #require(result["consumed"]?.intValue)
        #expect(consumed > 0 && consumed <= produced && produced < 1_000_000_000, "\(result)")
        #expect(result["checksumOK"] == .bool(false), "an incomplete run is not a verified one")
        let shown = try daemon.poolctl("job", "\(job.id)")
        #expect(shown.stdout.contains("incomplete: \(consumed) of 1000000000 consumed, \(produced - consumed) produced but not consumed"),
                "\(shown.stdout)")
        #expect(!shown.stdout.contains("MISMATCH"), "\(shown.stdout)")
        try daemon.stop()
    }

    @Test func aJobLargerThanThePoolIsRefused() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("run", "counter", "--workers", "4")
        #expect(run.status == 4)
        #expect(run.stderr.contains("PoolTooSmall") && run.stderr.contains("pool resize"), "\(run.stderr)")
        try daemon.stop()
    }

    // MARK: Failed slots, waiting jobs, fairness

    private func counter(workers: Int, iterations: Double) -> [String: JSONValue] {
        ["mode": .string("atomic"), "workers": .number(Double(workers)), "iterations": .number(iterations), "split": .bool(workers > 1)]
    }

    /// Fails `slot` for real: its worker is killed each time it is up again, until the slot has
    /// crashed the failure limit's 5 times within the window.
    private func failSlot(_ slot: Int, of daemon: DaemonHarness) throws {
        for kills in 0..<5 {
            let status = try daemon.waitForStatus { status in
                status.workers.contains { $0.slot == slot && $0.state == .ready && $0.restarts == kills }
            }
            let worker = try #require(status.workers.first { $0.slot == slot })
            #expect(kill(Int32(worker.pid), SIGKILL) == 0)
        }
        try daemon.waitForStatus { $0.workers.contains { $0.slot == slot && $0.state == .failed } }
    }

    @Test func aJobTheFailedSlotsLeaveNoRoomForIsRefusedAndRestartBringsTheSlotBack() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        try failSlot(1, of: daemon)
        let shown = try daemon.poolctl("status")
        #expect(shown.stdout.contains("bring them back with `poolctl pool restart 1`"), "\(shown.stdout)")

        let refused = try daemon.poolctl("run", "counter", "--detach", "--workers", "2")
        #expect(refused.status == 4, "\(refused.stdout)")
        #expect(refused.stderr.contains("PoolTooSmall") && refused.stderr.contains("slot 1 has failed")
                    && refused.stderr.contains("poolctl pool restart 1"), "\(refused.stderr)")
        let json = try daemon.poolctl("--json", "run", "counter", "--detach", "--workers", "2")
        let error = try JSONDecoder().decode(RefusalProbe.self, from: Data(json.stdout.utf8))
        #expect(error.error == "io.poold.Pool.PoolTooSmall" && error.parameters.failedSlots == [1], "\(json.stdout)")
        #expect(try daemon.status().jobsQueued == 0, "nothing was queued")
        // The slot that works still serves.
        let small = try daemon.poolctl("run", "counter", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(small.status == 0, "\(small.stderr)")

        let restart = try daemon.poolctl("pool", "restart", "1")
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(restart.stdout.contains("new workers in slots 1"), "\(restart.stdout)")
        let slot1 = try #require(try daemon.status().workers.first { $0.slot == 1 })
        #expect(slot1.state == .ready && slot1.pid != 0, "the reply comes once the new worker is ready: \(slot1)")
        let both = try daemon.poolctl("run", "counter", "--workers", "2", "--iterations", "1000")
        #expect(both.status == 0, "\(both.stderr)")
        let unknown = try daemon.poolctl("pool", "restart", "7")
        #expect(unknown.status == 4 && unknown.stderr.contains("no slot 7"), "\(unknown.stderr)")
        try daemon.stop()
    }

    @Test func restartReplacesEveryWorkerOneAtATime() throws {
        let daemon = try DaemonHarness.start(workers: 3)
        defer { try? daemon.stop() }
        let before = try daemon.status().workers
        let restart = try daemon.poolctl("--json", "pool", "restart")
        #expect(restart.status == 0, "\(restart.stderr)")
        let reply = try restart.json(RestartWorkersReply.self)
        #expect(reply.restarted == [0, 1, 2] && reply.afterJob.isEmpty)
        for worker in reply.workers {
            #expect(worker.state == .ready && !before.map(\.pid).contains(worker.pid), "\(worker)")
        }
        // Each slot's new worker was ready before the next slot's old worker was asked to exit.
        let lines = daemon.log.split(separator: "\n")
        for (slot, next) in [(0, 1), (1, 2)] {
            let newPID = reply.workers[slot].pid, oldNextPID = before[next].pid
            let ready = try #require(lines.firstIndex { $0.contains("(pid \(newPID)) ready") })
            let exited = try #require(lines.firstIndex { $0.contains("worker exited") && $0.contains("pid=\(oldNextPID) ") })
            #expect(ready < exited, "slot \(next) was replaced before slot \(slot)'s new worker was ready")
        }
        try daemon.stop()
    }

    @Test func aQueuedJobSaysWhatItWaitsForLetsSmallerOnesByAndFailsWhenASlotFails() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let long = try submit(daemon, counter(workers: 1, iterations: 10_000_000_000))
        #expect(long.state == .running)
        let big = try submit(daemon, counter(workers: 2, iterations: 1000))
        #expect(big.state == .queued)
        #expect(big.waiting == "waiting for 2 idle workers; 1 idle, 1 busy with job \(long.id)", "\(big.waiting ?? "nil")")
        let listed = try daemon.poolctl("jobs")
        #expect(listed.stdout.contains("waiting for 2 idle workers"), "\(listed.stdout)")

        // A job that can start does not wait behind one that cannot.
        let small = try submit(daemon, counter(workers: 1, iterations: 1000))
        #expect(small.state != .queued, "\(small.waiting ?? "")")
        #expect(try daemon.waitForJob(small.id).state == .succeeded)

        // Once a slot has failed the big job can never run: it fails at once, saying what to do.
        try failSlot(1, of: daemon)
        let failed = try daemon.waitForJob(big.id)
        #expect(failed.state == .failed)
        #expect(failed.error?.contains("PoolTooSmall") == true && failed.error?.contains("poolctl pool restart 1") == true,
                "\(failed.error ?? "")")

        // Restarting every slot: the failed one comes back, the busy one is replaced after its job.
        let busyPID = try #require(try daemon.status().workers.first { $0.job == long.id }).pid
        let restart = try daemon.poolctl("--json", "pool", "restart")
        #expect(restart.status == 0, "\(restart.stderr)")
        let reply = try restart.json(RestartWorkersReply.self)
        #expect(reply.restarted == [1] && reply.afterJob == [0], "\(restart.stdout)")
        #expect(reply.workers.first { $0.slot == 1 }?.state == .ready)
        #expect(try daemon.poolctl("cancel", "\(long.id)").status == 0)
        #expect(try daemon.waitForJob(long.id).state == .cancelled)
        try daemon.waitForStatus { status in
            status.workers.contains { $0.slot == 0 && $0.state == .ready && $0.pid != busyPID && $0.pid != 0 }
        }
        try daemon.stop()
    }

    @Test func aWaitingJobIsOvertakenAtMostEightTimes() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let long = try submit(daemon, counter(workers: 1, iterations: 10_000_000_000))
        let big = try submit(daemon, counter(workers: 2, iterations: 1000))
        let small = try (0..<10).map { _ in try submit(daemon, counter(workers: 1, iterations: 1000)) }
        // The first eight go past the big job, one after another on the free worker.
        for job in small.prefix(8) { #expect(try daemon.waitForJob(job.id).state == .succeeded) }
        let held = try daemon.jobRecord(small[8].id)
        #expect(held.state == .queued && held.waiting?.contains("waiting behind job \(big.id)") == true, "\(held.waiting ?? "nil")")
        let claimed = try daemon.jobRecord(big.id)
        #expect(claimed.waiting?.contains("overtaken 8 times") == true, "\(claimed.waiting ?? "nil")")

        #expect(try daemon.poolctl("cancel", "\(long.id)").status == 0)
        let bigDone = try daemon.waitForJob(big.id)
        let rest = try small.suffix(2).map { try daemon.waitForJob($0.id) }
        #expect(bigDone.state == .succeeded && rest.allSatisfy { $0.state == .succeeded })
        // Not before it (timestamps have millisecond resolution; each of its workers is free again
        // as soon as its own part is done).
        #expect(rest.allSatisfy { ($0.startedAt ?? "") >= (bigDone.startedAt ?? "~") },
                "the held jobs started after the big one: \(bigDone.startedAt ?? "-") then \(rest.map { $0.startedAt ?? "-" })")
        try daemon.stop()
    }
}

/// A refusal as `poolctl --json` prints it.
private struct RefusalProbe: Decodable {
    let error: String
    let parameters: PoolError.Parameters
}
