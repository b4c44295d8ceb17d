import Foundation
import PoolIPC
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's IPC resources running short: a small /dev/shm, a low queues_max, RLIMIT_MSGQUEUE.
/// Each test runs the real daemon in a private IPC namespace whose limits it sets (other daemons on
/// this machine share the host's), and asserts that what cannot fit is refused with the limit named,
/// that the daemon keeps serving, and that it leaves nothing behind on any path.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct IPCResourceTests {
    private func run(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue], detach: Bool = false) throws -> VarlinkReply<JSONValue> {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: detach))
    }

    private func submit(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue]) throws -> JobRecord {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: true),
                                 returning: JobReply.self).job
    }

    private func expectExactProdCons(_ daemon: DaemonHarness, items: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try daemon.poolctl("--json", "run", "prodcons", "--items", "\(items)")
        #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
        guard run.status == 0 else { return }
        let job = try run.json(JobRecord.self)
        #expect(job.state == .succeeded && job.result?["checksumOK"] == .bool(true), "\(job)", sourceLocation: sourceLocation)
    }

    private func reason(_ reply: VarlinkReply<JSONValue>) -> String { reply.parameters?["reason"]?.stringValue ?? "" }

    // MARK: /dev/shm

    @Test func aRunThatAFullDevShmCannotHoldIsRefusedNamingItAndTheDaemonKeepsServing() throws {
        let namespace = try IPCNamespace(sharedMemorySize: "1m")
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        // A trace of 100,000 items is 6.4 MB of segment: far more than the 1 MiB there is.
        let refused = try run(daemon, "prodcons", ["items": .number(100_000), "trace": .bool(true)])
        #expect(refused.error == "io.poold.Pool.ResourceLimit", "\(refused)")
        let text = reason(refused)
        #expect(text.contains("/dev/shm") && text.contains("needs 6") && text.contains("are free"), "\(text)")
        let cli = try daemon.poolctl("run", "prodcons", "--items", "100000", "--trace")
        #expect(cli.status != 0 && cli.stderr.contains("/dev/shm"), "\(cli.stderr)")

        try expectExactProdCons(daemon, items: 1000)
        #expect(try daemon.status().jobsFinished == 1, "the refused Runs made no job")
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func aSegmentIsReservedWhenCreatedSoDevShmFillingUpMeanwhileFailsTheJobNotTheDaemon() throws {
        let namespace = try IPCNamespace(sharedMemorySize: "1m")
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        // Both workers busy, so that the traced job waits; it fits /dev/shm when it is submitted.
        let blocker = try submit(daemon, "event", ["waiters": .number(2), "timeoutWaiters": .number(0), "setAfter": .string("60s")])
        let traced = try submit(daemon, "prodcons", ["items": .number(5000), "trace": .bool(true)])
        #expect(blocker.state == .running && traced.state == .queued)
        // Then something else takes every free page.
        let filler = namespace.sharedMemoryDirectory + "/filler"
        let written = fill(filler)
        defer { unlink(filler) }
        #expect(written > 0)
        _ = try daemon.poolctl("cancel", "\(blocker.id)")
        let job = try daemon.waitForJob(traced.id)
        #expect(job.state == .failed)
        #expect(job.error?.contains("posix_fallocate") == true && job.error?.contains("/dev/shm is full") == true, "\(job.error ?? "")")
        unlink(filler)
        try expectExactProdCons(daemon, items: 1000)
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    /// Writes zeros to `path` until the filesystem is full; returns the bytes written.
    private func fill(_ path: String) -> Int {
        let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while true {
            let count = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { return total }
            total += count
        }
    }

    @Test func aWorkerKilledBySigbusIsAWorkerDeathWithThatReason() throws {
        // Without the Swift runtime's crash reporter, whose handler would take a SIGBUS sent with
        // kill(2) and let the worker go on (a real fault strikes again once it returns).
        let daemon = try DaemonHarness.start(workers: 2, environment: ["SWIFT_BACKTRACE": "enable=no"])
        defer { try? daemon.stop() }
        let job = try submit(daemon, "event", ["waiters": .number(2), "timeoutWaiters": .number(0), "setAfter": .string("60s")])
        let victim = try #require(try daemon.status().workers.first { $0.job == job.id && $0.pid > 0 })
        kill(Int32(victim.pid), SIGBUS)
        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .failed)
        guard case .array(let dead)? = final.result?["deadWorkers"] else {
            Issue.record("no deadWorkers in \(String(describing: final.result))")
            return
        }
        #expect(dead.count == 1 && dead.first?["exit"]?.stringValue?.contains("SIGBUS") == true, "\(dead)")
        #expect(final.error?.contains("SIGBUS") == true, "\(final.error ?? "")")
        try daemon.stop()
    }

    // MARK: Message queues

    @Test func aFinishedJobOfAnyKindHoldsNoDescriptorAndOnlyAKeptSegmentsMapping() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let bare = String(daemon.prefix.dropFirst())
        for arguments in [["prodcons", "--items", "1000"], ["event", "--set-after", "10ms"], ["counter", "--iterations", "1000"],
                          ["tasks", "--count", "2"], ["append", "--chars", "ab", "--counts", "2,2", "--intervals", "1ms"]] {
            let run = try daemon.poolctl(arguments: ["--json", "run"] + arguments)
            #expect(run.status == 0 && (try? run.json(JobRecord.self).state) == .succeeded, "\(arguments): \(run.stderr)")
        }
        #expect(try daemon.status().jobsFinished == 5)
        let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd")) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon.pid)/fd/\($0)")
        }
        #expect(!descriptors.isEmpty)
        #expect(descriptors.filter { $0.contains(bare + ".job") } == [], "\(descriptors)")
        // The segments kept for reuse stay mapped (they hold no descriptor); no other is.
        let maps = procText("/proc/\(daemon.pid)/maps")
        let mapped = Set(maps.split(separator: "\n").filter { $0.contains(bare + ".job") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).joined(separator: " ")
        })
        let free = daemon.freeJobSegments
        #expect(mapped == Set(free.map { "/dev/shm/" + $0.dropFirst("shm:".count) }), "job segments mapped: \(mapped); free: \(free)")
        #expect(daemon.jobObjectsInUse == [])
        try daemon.stop()
    }

    @Test func moreProdconsJobsThanQueuesMaxRunOneAfterAnotherAndOneThatCannotFitIsRefusedNamingIt() throws {
        // The event queue and two command queues leave room for one job queue.
        let namespace = try IPCNamespace(queueLimits: ["queues_max": 4])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        for _ in 0..<6 { try expectExactProdCons(daemon, items: 200) }

        // One running, holding the last queue: the next cannot have one.
        let endless = try submit(daemon, "prodcons", ["items": .number(1_000_000_000)])
        try daemon.waitForProgress(job: endless.id, atLeast: 1)
        let refused = try run(daemon, "prodcons", ["items": .number(10)])
        #expect(refused.error == "io.poold.Pool.ResourceLimit", "\(refused)")
        #expect(reason(refused).contains("queues_max is 4") && reason(refused).contains("sysctl fs.mqueue.queues_max=5"), "\(reason(refused))")
        let cli = try daemon.poolctl("run", "prodcons", "--items", "10")
        #expect(cli.status != 0 && cli.stderr.contains("queues_max"), "\(cli.stderr)")
        _ = try daemon.poolctl("cancel", "\(endless.id)")
        #expect(try daemon.waitForJob(endless.id).state == .cancelled)
        try expectExactProdCons(daemon, items: 200)
        #expect(try daemon.status().jobsFinished == 8)
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func aQueueThatCannotBeCreatedWhenTheJobStartsFailsItNamingTheQueueAndQueuesMax() throws {
        let namespace = try IPCNamespace(queueLimits: ["queues_max": 4])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        // The prodcons job waits for the workers; its queue fits when it is submitted.
        let blocker = try submit(daemon, "event", ["waiters": .number(2), "timeoutWaiters": .number(0), "setAfter": .string("60s")])
        let waiting = try submit(daemon, "prodcons", ["items": .number(100)])
        #expect(blocker.state == .running && waiting.state == .queued)
        // Then someone else takes the last queue.
        try namespace.createQueue("someone-else")
        defer { unlink(namespace.mqueueDirectory + "/someone-else") }
        _ = try daemon.poolctl("cancel", "\(blocker.id)")
        let job = try daemon.waitForJob(waiting.id)
        #expect(job.state == .failed)
        #expect(job.error?.contains("cannot create the job's message queue") == true && job.error?.contains("queues_max = 4") == true
                && job.error?.contains("sysctl fs.mqueue.queues_max=") == true, "\(job.error ?? "")")
        unlink(namespace.mqueueDirectory + "/someone-else")
        try expectExactProdCons(daemon, items: 200)
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func aJobWhoseQueueWouldTakeTheDaemonPastRlimitMsgqueueIsRefusedNamingIt() throws {
        // Messages of 81,704 bytes (msgsize_max raised in the namespace): the job's queue alone is
        // 818,000 bytes, within RLIMIT_MSGQUEUE's 819,200; with the daemon's own queues it is not.
        let namespace = try IPCNamespace(queueLimits: ["msgsize_max": 100_000])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        let limit = SystemLimits.messageQueueByteLimit
        try #require(limit == 819_200, "the test assumes the default RLIMIT_MSGQUEUE")
        let cli = try daemon.poolctl("run", "prodcons", "--items", "10", "--payload-bytes", "81688")
        #expect(cli.status != 0 && cli.stderr.contains("ResourceLimit") && cli.stderr.contains("RLIMIT_MSGQUEUE")
                && cli.stderr.contains("ulimit -q"), "\(cli.stderr)")
        #expect(try daemon.status().jobsFinished == 0, "refused, not accepted and failed")
        try expectExactProdCons(daemon, items: 200)
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func theLargestPoolFollowsFromQueuesMaxAndAResizeBeyondWhatFitsIsRefusedNamingIt() throws {
        let namespace = try IPCNamespace(queueLimits: ["queues_max": 6])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        #expect(daemon.log.contains("the pool can grow to 5 workers, not --max-workers 256"), "\(daemon.log)")
        let client = try daemon.client()
        // The advertised maximum: 256 command queues and the event queue.
        let advertised = try client.call(PoolInterface.Method.resize.qualifiedName, ResizeRequest(workers: 256))
        #expect(advertised.error == "io.poold.Pool.ResourceLimit", "\(advertised)")
        #expect(reason(advertised).contains("queues_max = 6") && reason(advertised).contains("at most 5"), "\(reason(advertised))")

        // Another user's queue takes one of the six: three more command queues no longer fit.
        try namespace.createQueue("someone-else")
        let crowded = try client.call(PoolInterface.Method.resize.qualifiedName, ResizeRequest(workers: 5))
        #expect(crowded.error == "io.poold.Pool.ResourceLimit" && reason(crowded).contains("4 exist"), "\(crowded)")
        unlink(namespace.mqueueDirectory + "/someone-else")

        let grown = try daemon.poolctl("pool", "resize", "5")
        #expect(grown.status == 0, "\(grown.stderr)")
        let status = try daemon.waitForStatus { $0.workers.count == 5 && $0.workers.allSatisfy { $0.state == .ready } }
        #expect(status.poolSize == 5)
        let beyond = try daemon.poolctl("pool", "resize", "6")
        #expect(beyond.status != 0 && beyond.stderr.contains("queues_max"), "\(beyond.stderr)")
        #expect(try daemon.status().poolSize == 5)
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    // MARK: Whatever a daemon creates, it removes

    @Test func aCleanStopRemovesEveryQueueAlsoWhenQueuesMaxLeftSlotsFailed() throws {
        // Room for the event queue only: no worker can have a command queue, every slot fails.
        let namespace = try IPCNamespace(queueLimits: ["queues_max": 1])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        let status = try daemon.waitForStatus { $0.workers.count == 2 && $0.workers.allSatisfy { $0.state == .failed } }
        #expect(status.workers.allSatisfy { $0.lastExit?.contains("queues_max") == true }, "\(status.workers)")
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func aStartThatFailsHalfWayLeavesNothing() throws {
        // Twelve descriptors: enough for the history and the first IPC objects, not for the event loop.
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let failed = try runProgram("/usr/bin/prlimit", ["--nofile=12:12", "--", "/usr/bin/nsenter"] + namespace.enterArguments + [
            Binaries.poold, "--socket", directory.path + "/poold.sock", "--workers", "2", "--ipc-prefix", "/poold-halfway",
            "--log-target", "stderr", "--state-dir", directory.path + "/state"])
        #expect(failed.status != 0)
        #expect(namespace.objects == [], "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/poold.sock"))
    }

    @Test func theSweepRemovesAnInstanceThatDiedBeforeItsScoreboardHadAHeader() throws {
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        // What a poold killed between creating its scoreboard and stamping it leaves: an empty
        // scoreboard (and, had it got further, objects beside it).
        let dead = ["shm:poold-halfdead.job3", "shm:poold-halfdead.scoreboard", "mqueue:poold-halfdead.events", "mqueue:poold-halfdead.slot0.commands"]
        try namespace.createSharedMemory("poold-halfdead.scoreboard", size: 0)
        try namespace.createSharedMemory("poold-halfdead.job3")
        try namespace.createQueue("poold-halfdead.events")
        try namespace.createQueue("poold-halfdead.slot0.commands")
        #expect(namespace.objects == dead.sorted())
        // A scoreboard without a header may be one being created this instant: it is judged dead
        // only once older than that takes (5 s). Nothing signals its ageing; this waits it out.
        Thread.sleep(forTimeInterval: 5.5)
        let daemon = try DaemonHarness.start(workers: 1, namespace: namespace)
        defer { try? daemon.stop() }
        #expect(namespace.objects == daemon.ipcObjects, "left: \(namespace.objects)")
        let removal = daemon.log.split(separator: "\n").first { $0.contains("removed the IPC objects of a dead poold instance") }
        #expect(removal?.contains("ipcPrefix=/poold-halfdead") == true && removal?.contains("count=4") == true, "\(String(describing: removal))")
        try daemon.stop()
        #expect(namespace.objects == [])
    }
}
