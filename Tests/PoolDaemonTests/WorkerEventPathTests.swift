import Foundation
@testable import PoolDaemon
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How a worker's report reaches the daemon: the worker rings the doorbell pipe after putting its
/// event on the queue, and the event loop takes the event itself; the watcher thread is not woken
/// for it. The watcher takes what is left on the queue before it reports a worker's death.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct WorkerEventPathTests {
    /// The voluntary context switches of the daemon's thread named `name` (its wake-ups).
    private static func wakeUps(of pid: Int32, thread name: String) throws -> Int {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        for task in tasks {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? ""
            guard comm.trimmingCharacters(in: .whitespacesAndNewlines) == name else { continue }
            let status = try String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") })
            return try #require(Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)))
        }
        throw HarnessError(description: "no thread named \(name) in \(pid)")
    }

    @Test func jobsEndWithoutWakingTheWatcherThread() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let client = try daemon.client()
        let request = RunRequest(kind: "tasks", parameters: .object(["count": .number(1)]))
        _ = try client.call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self)
        let jobs = 200
        let started = Date()
        let before = try Self.wakeUps(of: daemon.pid, thread: "poold-watcher")
        for _ in 0..<jobs {
            let job = try client.call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job
            #expect(job.state == .succeeded, "\(job.error ?? "")")
        }
        let woken = try Self.wakeUps(of: daemon.pid, thread: "poold-watcher") - before
        // The watcher goes round once a second when nothing happens; a job must not wake it.
        let seconds = Int(Date().timeIntervalSince(started).rounded(.up))
        #expect(woken <= seconds + 2, "the watcher woke \(woken) times for \(jobs) jobs in \(seconds) s")
        try daemon.stop()
    }

    @Test func aReportLeftOnTheQueueByAWorkerThatDiedIsTakenBeforeItsDeath() throws {
        // The worker puts its report on the queue and dies before it rings the doorbell.
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--fault", "die-after-report=1"])
        defer { try? daemon.stop() }
        let request = RunRequest(kind: "tasks", parameters: .object(["count": .number(3)]))
        let job = try daemon.client().call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        // Its part ended as it reported: no participant was counted dead or run again.
        guard case .object(let result)? = job.result else {
            Issue.record("no result: \(String(describing: job.result))")
            return
        }
        #expect(result["deadWorkers"] == nil, "\(result)")
        #expect(result["ran"] == .number(3), "\(result)")
        // The death itself is still seen: the slot gets a new worker.
        let status = try daemon.waitForStatus { $0.workers.first?.restarts == 1 && $0.workers.first?.state == .ready }
        #expect(status.workers[0].lastExit?.contains("signal 9") == true, "\(String(describing: status.workers[0].lastExit))")
        try daemon.stop()
    }
}

/// The reserve of descriptors kept for spawns and job starts gives up only what they open.
/// (What it holds is asked of the reserve: whether a number it let go is open says nothing while
/// the other suites in this process open descriptors, and may be given that number at once.)
struct DescriptorReserveTests {
    private static func isOpen(_ descriptor: Int32) -> Bool { fcntl(descriptor, F_GETFD) >= 0 }

    @Test func aJobStartReleasesOnlyWhatItOpens() throws {
        let reserve = DescriptorReserve(capacity: 8)
        let held = reserve.held
        #expect(held.count == 8)
        let opened: [Int32] = reserve.whileReleased {
            #expect(reserve.held.count == 6 && Set(reserve.held).isSubset(of: held),
                    "the reserve released more than the two descriptors asked for: \(reserve.held) of \(held)")
            return [open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)]
        }
        #expect(reserve.held.count == 8 && reserve.held.allSatisfy(Self.isOpen), "the reserve is full again")
        for descriptor in opened { close(descriptor) }
    }

    @Test func placesHeldBeyondTheCapacityAreGivenBack() throws {
        let reserve = DescriptorReserve(capacity: 4)
        reserve.hold(3)
        #expect(reserve.held.count == 7)
        let kept = Array(reserve.held.prefix(2))
        reserve.whileReleased {
            #expect(reserve.held == kept, "the surplus and the two needed are free in the body: \(reserve.held)")
        }
        #expect(reserve.held.count == 4)
    }
}
