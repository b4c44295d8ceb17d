import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon keeps the segments of jobs that ended cleanly and runs later jobs of the same size on
/// them (`JobSegmentPool`): observed through /dev/shm (names, inodes, the header's free mark) and
/// the processes' mappings, on the real daemon.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct JobSegmentReuseTests {
    private func run(_ daemon: DaemonHarness, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> JobRecord {
        let run = try daemon.poolctl(arguments: ["--json", "run"] + arguments)
        #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
        return try run.json(JobRecord.self)
    }

    private func submit(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue]) throws -> JobRecord {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: true),
                                 returning: JobReply.self).job
    }

    /// `shm:NAME`, the segment made for job `id`.
    private func segment(_ daemon: DaemonHarness, job id: Int) -> String {
        "shm:\(daemon.prefix.dropFirst()).job\(id)"
    }

    private func inode(_ object: String) throws -> UInt {
        var info = stat()
        guard stat("/dev/shm/" + object.dropFirst("shm:".count), &info) == 0 else {
            throw HarnessError(description: "no \(object): \(String(cString: strerror(errno)))")
        }
        return UInt(info.st_ino)
    }

    /// The job segments process `pid` maps, as /proc/PID/maps names them ("(deleted)" once unlinked).
    private func mappedJobSegments(_ pid: Int, prefix: String) -> [String] {
        procText("/proc/\(pid)/maps").split(separator: "\n").filter { $0.contains(prefix.dropFirst() + ".job") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).joined(separator: " ")
        }
    }

    @Test func laterJobsRunOnTheFirstJobsSegmentAndTheStopRemovesIt() throws {
        // A short history: by the stop, the first job is forgotten, and its segment is only the pool's.
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--history-limit", "5"])
        defer { try? daemon.stop() }
        let first = try run(daemon, "tasks", "--count", "1")
        #expect(first.state == .succeeded)
        let kept = segment(daemon, job: first.id)
        #expect(daemon.freeJobSegments == [kept], "the first job's segment is kept, marked free")
        #expect(daemon.jobObjectsInUse == [])
        let inode = try inode(kept)
        for _ in 0..<20 {
            let job = try run(daemon, "tasks", "--count", "1")
            #expect(job.state == .succeeded && job.result?["ran"] == .number(1), "\(job)")
        }
        #expect(daemon.freeJobSegments == [kept], "every later job ran on it: no segment of its own")
        #expect(try self.inode(kept) == inode, "the same object, not a new one of the same name")
        // The worker attached it once and keeps it mapped.
        let worker = try #require(try daemon.status().workers.first).pid
        #expect(mappedJobSegments(worker, prefix: daemon.prefix) == ["/dev/shm/" + kept.dropFirst("shm:".count)])
        try daemon.stop()
        #expect(IPCObjects.of(instance: daemon.prefix) == [], "the stop removes the kept segment too")
    }

    @Test func aJobWhoseWorkerWasKilledDoesNotGiveItsSegmentToTheNext() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let event = { (setAfter: String) -> [String: JSONValue] in
            ["waiters": .number(2), "timeoutWaiters": .number(0), "setAfter": .string(setAfter)]
        }
        let first = try daemon.waitForJob(try submit(daemon, "event", event("1ms")).id)
        #expect(first.state == .succeeded)
        let kept = segment(daemon, job: first.id)
        #expect(daemon.freeJobSegments == [kept])
        // The same shape, so on that segment; its waiters wait a minute for the event.
        let blocked = try submit(daemon, "event", event("60s"))
        #expect(blocked.state == .running)
        #expect(daemon.jobObjectsInUse == [kept], "the job runs on the kept segment")
        let victim = try #require(try daemon.status().workers.first { $0.job == blocked.id && $0.pid > 0 })
        let survivor = try #require(try daemon.status().workers.first { $0.pid != victim.pid }).pid
        kill(Int32(victim.pid), SIGKILL)
        let failed = try daemon.waitForJob(blocked.id)
        #expect(failed.state == .failed, "\(failed)")
        #expect(!IPCObjects.of(instance: daemon.prefix).contains(kept), "a segment a killed worker had is removed, never reused")
        #expect(daemon.freeJobSegments == [])

        try daemon.waitForStatus { $0.workers.count == 2 && $0.workers.allSatisfy { $0.state == .ready } }
        let next = try daemon.waitForJob(try submit(daemon, "event", event("1ms")).id)
        #expect(next.state == .succeeded)
        #expect(daemon.freeJobSegments == [segment(daemon, job: next.id)], "the next job got a new segment")
        // The worker that survived had the removed segment mapped: marked retired, it let go of it.
        for pid in [survivor, Int(daemon.pid)] {
            let mapped = mappedJobSegments(pid, prefix: daemon.prefix)
            #expect(!mapped.contains { $0.hasSuffix("(deleted)") }, "process \(pid) still maps a removed segment: \(mapped)")
        }
        try daemon.stop()
    }

    @Test func aReusedSegmentStartsZeroedSoJobsAfterACancelledOneAreExact() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let counter = { (iterations: Double) -> [String: JSONValue] in
            ["workers": .number(1), "mode": .string("atomic"), "iterations": .number(iterations), "split": .bool(false)]
        }
        var segments: Set<String> = []
        for round in 0..<10 {
            // Cancelled mid-run, its worker reporting so: the segment is kept with its cancel flag
            // set, the barrier passed and a count of operations done in it.
            let endless = try submit(daemon, "counter", counter(10_000_000_000))
            try daemon.waitForProgress(job: endless.id, atLeast: 1)
            #expect(try daemon.poolctl("cancel", "\(endless.id)").status == 0)
            #expect(try daemon.waitForJob(endless.id).state == .cancelled)
            segments.formUnion(daemon.freeJobSegments)
            // The next job of that shape runs on it, from a clean start.
            let exact = try daemon.waitForJob(try submit(daemon, "counter", counter(100_000)).id)
            let result = try #require(exact.result).decode(CounterResult.self)
            #expect(exact.state == .succeeded && result.operations == 100_000 && result.expected == result.start + 100_000
                    && result.actual == result.expected, "round \(round): \(exact.state), \(result)")
            segments.formUnion(daemon.freeJobSegments)
        }
        #expect(segments.count == 1, "every job ran on one segment: \(segments)")
        try daemon.stop()
    }

    @Test func atMostEightSegmentsAreKeptAndNoneAboveAMebibyte() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        // Ten sizes (a task's record is 24 bytes: 200 more tasks, two pages more), one job each.
        let jobs = try (0..<10).map { try run(daemon, "tasks", "--count", "\(1 + 200 * $0)") }
        #expect(jobs.allSatisfy { $0.state == .succeeded })
        #expect(daemon.freeJobSegments == jobs.suffix(8).map { segment(daemon, job: $0.id) }.sorted(),
                "the eight most recently freed are kept, the oldest removed")
        // 50,000 tasks: 1.2 MB of segment, made and removed like any before the pool.
        let large = try run(daemon, "tasks", "--count", "50000")
        #expect(large.state == .succeeded)
        #expect(!IPCObjects.of(instance: daemon.prefix).contains(segment(daemon, job: large.id)))
        #expect(daemon.freeJobSegments.count == 8)
        try daemon.stop()
    }

    @Test func aDaemonKilledWithSegmentsKeptFreeHasThemRemovedByTheNextStart() throws {
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 1, namespace: namespace)
        defer { daemon.killAbruptly() }
        let small = try run(daemon, "tasks", "--count", "1")
        let large = try run(daemon, "tasks", "--count", "1000")
        let kept = [segment(daemon, job: small.id), segment(daemon, job: large.id)].sorted()
        #expect(daemon.freeJobSegments == kept, "one free segment per size")
        daemon.killAbruptly()
        let restarted = try DaemonHarness.start(workers: 1, prefix: daemon.prefix, namespace: namespace)
        defer { try? restarted.stop() }
        #expect(!namespace.objects.contains { kept.contains($0) })
        let removal = try #require(restarted.log.split(separator: "\n").first { $0.contains("removed the IPC objects of a dead poold instance") })
        #expect(kept.allSatisfy { removal.contains($0.dropFirst("shm:".count)) }, "\(removal)")
        try restarted.stop()
        #expect(namespace.objects == [])
    }
}
