import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What an administrator reaches for, as supervisorctl and systemctl have it: reload saying what
/// it applied, jobs filtered by state and kind, a shutdown that waits.
@Suite(.timeLimit(.minutes(3)))
struct OperatorCommandTests {
    @Test func reloadSaysWhichKeysAppliedWhichWaitForARestartAndWhichTheCommandLineHolds() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = directory.path + "/poold.conf"
        try "workers = 1\nhistory-limit = 5\ndrain-timeout = 30s\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness.start(workers: nil, arguments: ["--config", config, "--max-queued-jobs", "3"])
        defer { try? daemon.stop() }

        let unchanged = try daemon.poolctl("reload")
        #expect(unchanged.status == 0 && unchanged.stdout.contains("reloaded \(config): nothing changed"), "\(unchanged.stdout)\(unchanged.stderr)")

        try "workers = 2\nhistory-limit = 7\ndrain-timeout = 10s\nmax-queued-jobs = 9\njob-log-rate = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let reload = try daemon.poolctl("--json", "reload")
        #expect(reload.status == 0, "\(reload.stderr)")
        let reply = try reload.json(ReloadReply.self)
        #expect(reply.applied == ["workers = 2", "drain-timeout = 10s", "job-log-rate = 5"])
        #expect(reply.pending == ["history-limit = 7"])
        #expect(reply.ignored == ["max-queued-jobs = 9"])
        _ = try daemon.waitForStatus { $0.poolSize == 2 && $0.workers.allSatisfy { $0.state == .ready } }

        // A bad value anywhere: nothing applied, the reason names the key.
        try "workers = 1\ndrain-timeout = soon\n".write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try daemon.poolctl("reload")
        #expect(refused.status == 4 && refused.stderr.contains("drain-timeout = soon"), "\(refused.stderr)")
        #expect(try daemon.status().poolSize == 2, "a refused reload applies nothing")

        // The drain timeout in effect is the reloaded one.
        let run = try daemon.poolctl("run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        #expect(run.status == 0, "\(run.stderr)")
        _ = try daemon.waitForStatus { $0.jobsRunning == 1 }
        #expect(try daemon.poolctl("shutdown").status == 0)
        let draining = try daemon.waitForStatus { $0.drain != nil }
        #expect(draining.drain?.timeoutSeconds == 10)
        daemon.signal(SIGTERM)
        try daemon.stop()
    }

    @Test func jobsAreFilteredByStateAndKind() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        for arguments in [["tasks", "--count", "2"], ["counter", "--mode", "atomic", "--iterations", "1000"], ["tasks", "--count", "1"]] {
            #expect(try daemon.poolctl(arguments: ["run"] + arguments).status == 0)
        }
        let tasks = try daemon.poolctl("--json", "jobs", "--kind", "tasks").json(ListJobsReply.self).jobs
        #expect(tasks.map(\.id) == [3, 1] && tasks.allSatisfy { $0.kind == "tasks" })
        let counters = try daemon.poolctl("--json", "jobs", "--state", "succeeded", "--kind", "counter").json(ListJobsReply.self).jobs
        #expect(counters.map(\.id) == [2])
        #expect(try daemon.poolctl("--json", "jobs", "--state", "running").json(ListJobsReply.self).jobs.isEmpty)
        #expect(try daemon.poolctl("jobs", "--state", "failed").stdout.contains("no failed jobs"))
        // The limit counts what matches.
        #expect(try daemon.poolctl("--json", "jobs", "--kind", "tasks", "--limit", "1").json(ListJobsReply.self).jobs.map(\.id) == [3])

        let badState = try daemon.poolctl("jobs", "--state", "frobnicated")
        #expect(badState.status == 2 && badState.stderr.contains("succeeded"), "\(badState.stderr)")
        let badKind = try daemon.poolctl("jobs", "--kind", "frob")
        #expect(badKind.status == 4 && badKind.stderr.contains("prodcons"), "the kinds are listed: \(badKind.stderr)")
        try daemon.stop()
    }

    @Test func shutdownWaitReturnsOnceTheDaemonHasExited() throws {
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--drain-timeout", "1s"])
        let workers = try daemon.status().workers.map(\.pid)
        let run = try daemon.poolctl("run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        #expect(run.status == 0, "\(run.stderr)")
        _ = try daemon.waitForStatus { $0.jobsRunning == 1 }
        let shutdown = try daemon.poolctl("shutdown", "--wait")
        #expect(shutdown.status == 0, "\(shutdown.stderr)")
        #expect(shutdown.stdout.contains("draining 1 job(s)") && shutdown.stdout.hasSuffix("poold has stopped\n"), "\(shutdown.stdout)")
        // The socket was closed by the exit itself: nothing answers any more.
        #expect(try daemon.poolctl("status").status == 3)
        daemon.expectCleanExit(workers: workers)
    }
}
