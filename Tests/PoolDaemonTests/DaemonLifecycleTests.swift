import CPooldShim
import Foundation
import PoolIPC
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How the daemon ends: killed with SIGKILL (its workers follow it, the next start removes what it
/// left, and only that), or stopped with SIGTERM (running jobs drain until a deadline, then are
/// cancelled with an exact account). Each test runs the real daemon and asserts exact outcomes:
/// which IPC objects exist, which processes run, what each job's record says.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DaemonLifecycleTests {
    // MARK: SIGKILL and stale IPC objects

    @Test func sigkilledDaemonsWorkersExitWithinASecondAndARestartWithTheSamePrefixRemovesWhatItLeft() throws {
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { daemon.killAbruptly() }
        let job = try startEndlessProdCons(daemon)
        let workers = try daemon.status().workers.map { Int32($0.pid) }
        #expect(workers.count == 2 && workers.allSatisfy { $0 > 0 })
        let exits = try workers.map(ProcessExitWatch.init(pid:))
        let left = daemon.ipcObjects
        let bare = daemon.prefix.dropFirst()
        #expect(left == ["mqueue:\(bare).events", "mqueue:\(bare).job\(job).queue", "mqueue:\(bare).slot0.commands",
                         "mqueue:\(bare).slot1.commands", "shm:\(bare).job\(job)", "shm:\(bare).scoreboard"])

        let killed = ContinuousClock.now
        daemon.killAbruptly()
        // PDEATHSIG: each worker is sent SIGKILL the moment the daemon is gone.
        for exit in exits {
            #expect(exit.waitForExit(deadline: killed + .seconds(1)), "worker \(exit.pid) still runs 1 s after the daemon was killed")
            #expect(!exit.isRunning)
        }
        // Nobody else in this namespace cleans up: the dead daemon's objects are all still there.
        #expect(daemon.ipcObjects == left)

        // The same prefix again (an explicit --ipc-prefix reused): the dead instance's objects are
        // removed before the new one creates its own, so nothing collides.
        let restarted = try DaemonHarness.start(workers: 2, prefix: daemon.prefix, namespace: namespace)
        defer { try? restarted.stop() }
        #expect(restarted.ipcObjects == ["mqueue:\(bare).events", "mqueue:\(bare).slot0.commands", "mqueue:\(bare).slot1.commands",
                                         "shm:\(bare).scoreboard"])
        let removal = try #require(restarted.log.split(separator: "\n").first { $0.contains("removed the IPC objects of a dead poold instance") })
        #expect(removal.contains("count=6") && removal.contains("ipcPrefix=\(daemon.prefix)") && removal.contains("deadPid=\(daemon.pid)"),
                "\(removal)")
        // Job 1 again, with the same segment and queue names as the dead one's: they must be free.
        let run = try restarted.poolctl("--json", "run", "prodcons", "--items", "1000")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try run.json(JobRecord.self).id == job)
        try restarted.stop()
        #expect(namespace.objects == [])
    }

    @Test func aStartRemovesOnlyTheDeadInstancesObjectsNotALiveOnesNorUnrelatedOnes() throws {
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        let dead = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { dead.killAbruptly() }
        _ = try startEndlessProdCons(dead)
        // A live instance whose prefix extends the dead one's: its objects also start with
        // `<dead prefix>.`, and must be told apart.
        let live = try DaemonHarness.start(workers: 2, prefix: dead.prefix + ".live", namespace: namespace)
        defer { try? live.stop() }
        // Decoys: unrelated names, an object with a poold-like name but no instance, and a
        // scoreboard without poold's header (an older poold, or one being created).
        let decoys = ["shm:pooldx-unrelated", "mqueue:pooldx-unrelated", "shm:poold-orphan.job1", "shm:poold-old.scoreboard"]
        try namespace.createSharedMemory("pooldx-unrelated")
        try namespace.createQueue("pooldx-unrelated")
        try namespace.createSharedMemory("poold-orphan.job1")
        try namespace.createSharedMemory("poold-old.scoreboard")

        let liveObjects = live.ipcObjects
        #expect(liveObjects.count == 4)
        let deadObjects = dead.ipcObjects.filter { !liveObjects.contains($0) }
        #expect(deadObjects.count == 6)
        dead.killAbruptly()

        let fresh = try DaemonHarness.start(workers: 1, namespace: namespace)
        defer { try? fresh.stop() }
        let remaining = namespace.objects
        #expect(deadObjects.allSatisfy { !remaining.contains($0) }, "left: \(deadObjects.filter(remaining.contains))")
        #expect(live.ipcObjects == liveObjects, "the live instance's objects are untouched")
        #expect(decoys.allSatisfy(remaining.contains), "decoys removed: \(decoys.filter { !remaining.contains($0) })")
        #expect(remaining == (liveObjects + fresh.ipcObjects + decoys).sorted())
        let removals = fresh.log.split(separator: "\n").filter { $0.contains("removed") }
        #expect(removals.count == 1 && removals[0].contains("ipcPrefix=\(dead.prefix) ") && removals[0].contains("count=6"), "\(removals)")
        // And the live instance still works.
        let run = try live.poolctl("run", "prodcons", "--items", "1000")
        #expect(run.status == 0, "\(run.stderr)")
        try fresh.stop()
        try live.stop()
    }

    @Test func withoutAnMqueueMountTheDeadInstancesQueuesAreFoundFromItsScoreboard() throws {
        // /dev/mqueue shows no queues here, as in a container without the mount: the queues a
        // dead instance can have had are named from its scoreboard and job segments instead.
        let namespace = try IPCNamespace(mqueueOnDevMqueue: false)
        defer { namespace.close() }
        let dead = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { dead.killAbruptly() }
        let job = try startEndlessProdCons(dead)
        let bare = dead.prefix.dropFirst()
        #expect(dead.ipcObjects.filter { $0.hasPrefix("mqueue:") }
                == ["mqueue:\(bare).events", "mqueue:\(bare).job\(job).queue", "mqueue:\(bare).slot0.commands", "mqueue:\(bare).slot1.commands"])
        dead.killAbruptly()

        let fresh = try DaemonHarness.start(workers: 1, namespace: namespace)
        defer { try? fresh.stop() }
        #expect(dead.ipcObjects == [])
        #expect(namespace.objects == fresh.ipcObjects)
        try fresh.stop()
    }

    // MARK: SIGTERM: the drain

    @Test func sigtermDrainsUntilTheDeadlineThenCancelsWithAnExactAccount() throws {
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--drain-timeout", "3s"], followNotifications: true)
        defer { try? daemon.stop() }
        // A counter that would run for minutes, its Run call waiting for the end on its own connection.
        let long = try PendingRun(daemon, kind: "counter", parameters: [
            "mode": .string("locked"), "workers": .number(2), "iterations": .number(10_000_000_000), "split": .bool(true)])
        let id = long.job.id
        try daemon.waitForProgress(job: id, atLeast: 1)
        let queued = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                              RunRequest(kind: "tasks", parameters: .object(["count": .number(2)]), detach: true),
                                              returning: JobReply.self).job
        #expect(queued.state == .queued)
        let workers = try daemon.status().workers.map(\.pid)

        let sigterm = Date()
        daemon.signal(SIGTERM)
        var stopping = false, draining: String?
        while draining == nil, let message = daemon.nextNotification(timeoutSeconds: 10) {
            for line in message.split(separator: "\n") {
                if line == "STOPPING=1" { stopping = true }
                if stopping, line.hasPrefix("STATUS=") { draining = String(line) }
            }
        }
        #expect(stopping, "STOPPING=1 was sent")
        #expect(draining?.hasPrefix("STATUS=stopping (SIGTERM): draining 1 job, deadline in ") == true, "\(draining ?? "no STATUS=")")

        // During the drain: no new jobs, a status that says so, the queued job cancelled at once.
        let refused = try daemon.poolctl("run", "tasks")
        #expect(refused.status == 4, "\(refused.stderr)")
        #expect(refused.stderr.contains("io.poold.Pool.ShuttingDown") && refused.stderr.contains("shutting down (SIGTERM)"), "\(refused.stderr)")
        let reply = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                             RunRequest(kind: "tasks", parameters: nil, detach: true))
        #expect(reply.error == "io.poold.Pool.ShuttingDown")
        #expect(reply.parameters?["reason"]?.stringValue?.contains("accepts no new jobs") == true)
        let status = try daemon.status()
        let drain = try #require(status.drain)
        #expect(drain.reason == "SIGTERM" && drain.timeoutSeconds == 3 && drain.secondsLeft > 0 && drain.secondsLeft <= 3)
        #expect(status.jobsRunning == 1 && status.jobsQueued == 0)
        let shown = try daemon.poolctl("status")
        #expect(shown.stdout.contains("shutting down (SIGTERM): running jobs may finish within"), "\(shown.stdout)")
        let cancelledAtOnce = try daemon.jobRecord(queued.id)
        #expect(cancelledAtOnce.state == .cancelled && cancelledAtOnce.startedAt == nil)
        #expect(cancelledAtOnce.error?.contains("had not started") == true, "\(cancelledAtOnce.error ?? "")")

        // At the deadline: cancelled, with the account of what was done.
        let job = try long.finalRecord()
        #expect(job.id == id && job.state == .cancelled)
        #expect(job.error?.contains("still running at the drain deadline (3s)") == true, "\(job.error ?? "")")
        let result = try #require(job.result).decode(CounterResult.self)
        #expect(result.actual == result.expected && result.lost == 0, "the lock keeps the count exact even when cancelled")
        #expect(result.operations > 0 && result.operations < 20_000_000_001)
        #expect(result.operations == result.workers.map(\.operations).reduce(0, +))
        let finished = try #require(job.finishedAt.flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) })
        #expect(finished.timeIntervalSince(sigterm) >= 2.9, "the job ran on until the deadline")
        daemon.expectCleanExit(workers: workers)
    }

    @Test func sigtermLetsAShortJobFinishBeforeTheDaemonExits() throws {
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--drain-timeout", "60s"])
        defer { try? daemon.stop() }
        // About a second of work: ten appends, 100 ms apart, on each of two workers.
        let short = try PendingRun(daemon, kind: "append", parameters: [
            "chars": .string("oO"), "counts": .array([.number(10), .number(10)]), "intervals": .array([.string("100ms")])])
        let id = short.job.id
        try daemon.waitForProgress(job: id, atLeast: 1)
        let workers = try daemon.status().workers.map(\.pid)
        let sigterm = ContinuousClock.now
        daemon.signal(SIGTERM)

        let job = try short.finalRecord()
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        #expect(job.result?["text"]?.stringValue?.count == 20, "\(String(describing: job.result))")
        daemon.expectCleanExit(workers: workers)
        #expect(ContinuousClock.now - sigterm < .seconds(30), "the daemon exited once the job was done, not at the deadline")
    }

    @Test func aWorkerThatDiesDuringTheDrainIsReplacedAndItsJobStillCompletesExactly() throws {
        let drain = try ProdConsDuringDrain()
        defer { try? drain.daemon.stop() }
        drain.daemon.signal(SIGTERM)
        _ = try drain.daemon.waitForStatus { $0.drain != nil }
        #expect(kill(Int32(drain.consumer.pid), SIGKILL) == 0)

        let result = try drain.expectExactFinish()
        guard case .array(let dead)? = result?["deadWorkers"] else { Issue.record("no deadWorkers in \(String(describing: result))"); return }
        #expect(dead.count == 1 && dead.first?["pid"]?.intValue == drain.consumer.pid && dead.first?["replaced"] == .bool(true), "\(dead)")
    }

    @Test func aSigtermWhileADeadWorkersSlotBacksOffStillLetsTheReplacementFinish() throws {
        let drain = try ProdConsDuringDrain()
        defer { try? drain.daemon.stop() }
        #expect(kill(Int32(drain.consumer.pid), SIGKILL) == 0)
        // The slot waits out its backoff (at least 50 ms) before the replacement starts: SIGTERM then.
        _ = try drain.daemon.waitForStatus { $0.workers.first { $0.slot == drain.consumer.slot }?.state == .backoff }
        drain.daemon.signal(SIGTERM)
        _ = try drain.expectExactFinish()
    }

    @Test func aSecondSigtermCancelsTheRunningJobsAtOnce() throws {
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--drain-timeout", "120s"], followNotifications: true)
        defer { try? daemon.stop() }
        let long = try PendingRun(daemon, kind: "counter", parameters: [
            "mode": .string("atomic"), "workers": .number(1), "iterations": .number(10_000_000_000), "split": .bool(false)])
        let id = long.job.id
        try daemon.waitForProgress(job: id, atLeast: 1)
        let workers = try daemon.status().workers.map(\.pid)
        daemon.signal(SIGTERM)
        while let message = daemon.nextNotification(timeoutSeconds: 10), !message.split(separator: "\n").contains("STOPPING=1") {}
        daemon.signal(SIGTERM)

        let job = try long.finalRecord()
        #expect(job.state == .cancelled)
        #expect(job.error?.contains("asked again to stop") == true, "\(job.error ?? "")")
        let result = try #require(job.result).decode(CounterResult.self)
        #expect(result.actual == result.expected && result.operations > 0 && result.operations < 10_000_000_000)
        daemon.expectCleanExit(workers: workers)
    }

    @Test func aDrainTimeoutOfZeroCancelsAtOnceAndBadValuesAreRefused() throws {
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--drain-timeout", "0"])
        defer { try? daemon.stop() }
        let long = try PendingRun(daemon, kind: "counter", parameters: [
            "mode": .string("atomic"), "workers": .number(1), "iterations": .number(10_000_000_000), "split": .bool(false)])
        let id = long.job.id
        try daemon.waitForProgress(job: id, atLeast: 1)
        let workers = try daemon.status().workers.map(\.pid)
        daemon.signal(SIGTERM)
        let job = try long.finalRecord()
        #expect(job.state == .cancelled && job.error?.contains("no drain time") == true, "\(job.error ?? "")")
        daemon.expectCleanExit(workers: workers)

        let bad = try runProgram(Binaries.poold, ["--drain-timeout", "soon", "--socket", "/nonexistent/p.sock"])
        #expect(bad.status == 2 && bad.stderr.contains("--drain-timeout"), "\(bad.stderr)")
    }

    // MARK: Helpers

    /// A prodcons job that runs far longer than any test (its queue is a job object of its own),
    /// once it is under way.
    private func startEndlessProdCons(_ daemon: DaemonHarness) throws -> Int {
        let job = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                           RunRequest(kind: "prodcons", parameters: .object(["items": .number(1_000_000_000)]), detach: true),
                                           returning: JobReply.self).job
        try daemon.waitForProgress(job: job.id, atLeast: 1)
        return job.id
    }
}

/// A 1 x 2 prodcons job of a million items, a quarter done, on a daemon that drains for up to 60 s,
/// with a consumer to kill.
private struct ProdConsDuringDrain {
    static let items = 1_000_000
    let daemon: DaemonHarness
    let run: PendingRun
    let workers: [Int]
    let consumer: WorkerInfo

    init() throws {
        daemon = try DaemonHarness.start(workers: 3, arguments: ["--drain-timeout", "60s"])
        run = try PendingRun(daemon, kind: "prodcons", parameters: [
            "producers": .number(1), "consumers": .number(2), "items": .number(Double(Self.items))])
        try daemon.waitForProgress(job: run.job.id, atLeast: Self.items / 4)
        let consumerSlot = try #require(try daemon.jobRecord(run.job.id).slots.last)
        let status = try daemon.status()
        workers = status.workers.map(\.pid)
        consumer = try #require(status.workers.first { $0.slot == consumerSlot })
    }

    /// The job succeeded with every item consumed once, and the daemon exited cleanly; its result.
    func expectExactFinish(sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue? {
        let job = try run.finalRecord()
        #expect(job.state == .succeeded, "\(job.error ?? "")", sourceLocation: sourceLocation)
        #expect(job.result?["checksumOK"] == .bool(true) && job.result?["consumed"]?.intValue == Self.items,
                "\(String(describing: job.result))", sourceLocation: sourceLocation)
        daemon.expectCleanExit(workers: workers, sourceLocation: sourceLocation)
        return job.result
    }
}

/// Waits for any process (not only a child) to exit, through a pidfd: no pid polling, and no
/// confusion with a recycled pid.
private final class ProcessExitWatch {
    let pid: Int32
    private let pidfd: Int32

    init(pid: Int32) throws {
        self.pid = pid
        pidfd = pool_pidfd_open(pid)
        guard pidfd >= 0 else { throw HarnessError(description: "pidfd_open(\(pid)): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(pidfd)
    }

    /// True once the process has exited (a pidfd becomes readable then), false at the deadline.
    func waitForExit(deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            let millis = max(0, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, millis)
            if ready == 1 { return true }
            if ready == 0 || errno != EINTR { return false }
        }
    }

    /// Whether it still runs: its /proc entry is gone, or says zombie (exited, not yet reaped: the
    /// reaper of orphans here may be slow or absent).
    var isRunning: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].first
        return state != "Z" && state != "X"
    }
}
