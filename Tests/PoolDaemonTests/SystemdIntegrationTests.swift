import Foundation
import PoolIPC
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon as systemd runs it: notifications and the watchdog, socket activation, journald.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SystemdIntegrationTests {
    @Test func notifiesReadyStatusWatchdogAndStopping() throws {
        // WATCHDOG_USEC of 0.4 s: the daemon must ping every 0.2 s.
        let daemon = try DaemonHarness.start(workers: 2, environment: ["WATCHDOG_USEC": "400000"], followNotifications: true)
        defer { try? daemon.stop() }
        // READY=1 came only once the control socket accepts: connecting now must work.
        #expect(try daemon.status().workers.allSatisfy { $0.state == .ready })
        let ready = try #require(daemon.notifications.last)
        #expect(ready.contains("STATUS=2/2 workers up"), "\(ready)")

        // A job, then a burst of 100: STATUS= follows them, at most once a second (a line per
        // change would be two or three per job).
        let start = Date()
        let run = try daemon.poolctl("run", "tasks", "--count", "4")
        #expect(run.status == 0)
        let client = try daemon.client()
        for _ in 0..<100 {
            _ = try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: "tasks", parameters: .object(["count": .number(1)])),
                                returning: JobReply.self)
        }
        var statuses: [String] = []
        var watchdogPings = 0
        while watchdogPings < 2 || !statuses.contains(where: { $0.contains("101 done") }) {
            guard let message = daemon.nextNotification() else { break }
            for line in message.split(separator: "\n") {
                if line == "WATCHDOG=1" { watchdogPings += 1 }
                if line.hasPrefix("STATUS=") { statuses.append(String(line)) }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(watchdogPings >= 2, "periodic WATCHDOG=1")
        #expect(statuses.contains { $0.contains("101 done") }, "STATUS= follows the jobs: \(statuses)")
        #expect(statuses.count <= Int(seconds.rounded(.up)) + 2, "\(statuses.count) STATUS= lines in \(seconds)s: \(statuses)")

        daemon.signal(SIGTERM)
        var stopping = false
        while !stopping, let message = daemon.nextNotification() {
            stopping = message.split(separator: "\n").contains("STOPPING=1")
        }
        #expect(stopping)
        try daemon.stop()
    }

    @Test func theDrainExtendsSystemdsStopTimeoutBeyondTheDrainTimeout() throws {
        // A drain longer than the unit's TimeoutStopSec=45s: systemd must be told to wait for it.
        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--drain-timeout", "120s"], followNotifications: true)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        #expect(run.status == 0, "\(run.stderr)")
        _ = try daemon.waitForStatus { $0.jobsRunning == 1 }
        daemon.signal(SIGTERM)
        var extensions: [Int64] = []
        while extensions.count < 2, let message = daemon.nextNotification() {
            for line in message.split(separator: "\n") where line.hasPrefix("EXTEND_TIMEOUT_USEC=") {
                extensions.append(Int64(line.dropFirst("EXTEND_TIMEOUT_USEC=".count)) ?? -1)
            }
        }
        #expect(extensions.count == 2, "EXTEND_TIMEOUT_USEC at the start of the drain and as it counts down")
        // The first covers the whole drain (120 s) plus the cancel grace and a worker's stop timeout.
        let first = try #require(extensions.first)
        #expect(first > 130_000_000 && first <= 131_000_000, "\(extensions)")
        #expect(extensions[1] > 120_000_000 && extensions[1] < first, "each covers what is left: \(extensions)")
        // A second SIGTERM ends the drain at once: the job is cancelled and the daemon exits.
        daemon.signal(SIGTERM)
        try daemon.stop()
    }

    @Test func sighupReloadsTheConfigurationAndResizes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = directory.path + "/poold.conf"
        try "workers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness.start(workers: nil, arguments: ["--config", config], followNotifications: true)
        defer { try? daemon.stop() }
        try "# grown by a reload\nworkers = 3\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        var sequence: [String] = []
        while !sequence.contains("READY=1"), let message = daemon.nextNotification() {
            sequence += message.split(separator: "\n").map(String.init).filter { $0 == "RELOADING=1" || $0 == "READY=1" }
        }
        #expect(sequence == ["RELOADING=1", "READY=1"])
        let grown = try daemon.waitForStatus { $0.workers.count == 3 && $0.workers.allSatisfy { $0.state == .ready } }
        #expect(grown.poolSize == 3)
        try daemon.stop()
    }

    @Test func adoptsASocketPassedBySocketActivation() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let activated = directory.path + "/activated.sock"
        let unused = directory.path + "/never-bound.sock"
        let prefix = "/poold-t\(getpid())-activation"
        let log = directory.path + "/activate.log"
        // Spawned with posix_spawn and watched through a pidfd, not with Foundation's Process: while
        // systemd-socket-activate runs, Foundation stops reaping the test's other children here.
        let command = ["/usr/bin/systemd-socket-activate", "-l", activated, Binaries.poold, "--workers", "1",
                       "--socket", unused, "--ipc-prefix", prefix, "--log-target", "stderr", "--state-dir", directory.path + "/state"]
            .map { "'\($0)'" }.joined(separator: " ")
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let process = try SpawnedProcess.spawn(path: "/bin/sh", arguments: ["sh", "-c", "exec \(command) 2>'\(log)'"],
                                               environment: environment)
        // systemd-socket-activate says when it listens; the daemon starts on the first connection.
        let listening = try runProgram("/bin/bash", ["-c", "grep -q -m1 'Listening on' < <(timeout 30 tail -n +1 -f \"$0\")", log])
        #expect(listening.status == 0, "systemd-socket-activate did not listen")
        let status = try runProgram(Binaries.poolctl, ["--socket", activated, "--json", "status"])
        #expect(status.status == 0, "\(status.stderr)")
        let reply = try status.json(StatusReply.self)
        #expect(reply.pid == Int(process.pid), "systemd-socket-activate execs the daemon in its own process")
        #expect(!FileManager.default.fileExists(atPath: unused), "the daemon bound no socket of its own")

        let job = try runProgram(Binaries.poolctl, ["--socket", activated, "run", "counter", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000"])
        #expect(job.status == 0)
        #expect(try runProgram(Binaries.poolctl, ["--socket", activated, "shutdown"]).status == 0)
        var exited = pollfd(fd: process.pidfd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&exited, 1, 30_000) == 1, "the daemon exits after Shutdown")
        #expect(process.reap() == .exited(0))
        #expect(IPCObjects.named(withPrefix: prefix).isEmpty)
    }

    /// Runs a script of Scripts/ in a private mount namespace, with a journald of its own, and
    /// returns the result.json it wrote.
    private func journalScript(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/" + name).path
        let run = try runProgram("/usr/bin/unshare", ["--mount", "--propagation", "private", "python3", script, Binaries.directory, directory.path])
        #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
        return try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: directory.path + "/result.json")))
    }

    @Test func journalRecordsCarryThePooldFieldsAndPoolctlLogsReadsThem() throws {
        let result = try journalScript("journal-roundtrip.py")
        #expect(result["daemonExit"]?.intValue == 0)
        guard case .array(let records)? = result["journalctl"], case .array(let logs)? = result["poolctlLogs"] else {
            Issue.record("no records: \(result)")
            return
        }
        let messages = records.compactMap { $0["MESSAGE"]?.stringValue }
        // The text says what happened to what, with the numbers; the fields stay.
        #expect(messages.contains("job 1 (tasks) started on slots 0, 1"), "\(messages)")
        let started = try #require(records.first { $0["MESSAGE"]?.stringValue == "job 1 (tasks) started on slots 0, 1" })
        #expect(started["MESSAGE_ID"]?.stringValue == "3d5a17d5df6c48818c5df9e26bb90bc8")
        #expect(started["POOLD_JOB_KIND"]?.stringValue == "tasks" && started["SYSLOG_IDENTIFIER"]?.stringValue == "poold")
        #expect(started["CODE_FILE"]?.stringValue?.hasSuffix(".swift") == true && started["CODE_LINE"] != nil && started["CODE_FUNC"] != nil)
        let finished = try #require(records.first { $0["MESSAGE"]?.stringValue?.hasPrefix("job 1 (tasks) succeeded in ") == true })
        #expect(finished["MESSAGE"]?.stringValue?.hasSuffix(": 3 of 3 tasks ran") == true, "\(finished)")
        #expect(finished["MESSAGE_ID"]?.stringValue == "4e2736b9db6e49708a7adf1dac1f286b")

        let tasks = records.filter { $0["MESSAGE"]?.stringValue?.contains("I'm the task") == true }
        #expect(tasks.count == 3)
        for record in tasks {
            // Workers write their own records: _PID is the worker, and says so in POOLD_WORKER_PID.
            #expect(record["_PID"]?.stringValue == record["POOLD_WORKER_PID"]?.stringValue)
            #expect(record["_PID"]?.stringValue != started["_PID"]?.stringValue)
            #expect(record["POOLD_WORKER"] != nil && record["POOLD_JOB_ID"]?.stringValue == "1")
            // And their text names the slot: `slot 1: I'm the task 2`.
            #expect(record["MESSAGE"]?.stringValue?.hasPrefix("slot \(record["POOLD_WORKER"]?.stringValue ?? "?"): I'm the task") == true)
        }
        // `journalctl -o cat` reads on its own: a worker's death, what came of it, and the job it failed.
        let text = result["journalText"]?.stringValue ?? ""
        let victim = (slot: result["victim"]?["slot"]?.intValue ?? -1, pid: result["victim"]?["pid"]?.intValue ?? -1)
        #expect(text.contains("worker in slot \(victim.slot) (pid \(victim.pid)) died: killed by signal 9 (SIGKILL"), "\(text)")
        #expect(text.contains("; respawning in ") && text.contains("respawning the worker in slot \(victim.slot) (restart 1)"), "\(text)")
        #expect(text.contains("job 2 (event) failed after ") && text.contains(": the worker in slot \(victim.slot) (pid \(victim.pid)) died: killed by signal 9"),
                "\(text)")
        #expect(text.contains("ready: 2 workers, socket "), "\(text)")
        #expect(result["poolctlLogsExit"]?.intValue == 0)
        #expect(logs.compactMap { $0["MESSAGE"]?.stringValue } == messages, "poolctl logs 1 shows the same records")
    }

    @Test func poolctlLogsShowsOnlyTheDaemonBehindItsSocket() throws {
        let result = try journalScript("journal-two-daemons.py")
        guard case .array(let instances)? = result["instances"], instances.count == 2,
              let first = instances[0].stringValue, let second = instances[1].stringValue else {
            Issue.record("no instances: \(result)")
            return
        }
        #expect(first != second, "two daemons, two identities")
        func records(_ key: String) -> [JSONValue] {
            if case .array(let list)? = result[key] { return list }
            return []
        }
        func tasks(_ list: [JSONValue]) -> Int { list.filter { $0["MESSAGE"]?.stringValue?.contains("I'm the task") == true }.count }
        // Job 1 ran 3 tasks on the first daemon and 5 on the second: each socket shows its own.
        #expect(tasks(records("firstJob1")) == 3 && tasks(records("secondJob1")) == 5)
        // A worker's records of a later job carry that job (a worker logs every job through one logger).
        #expect(tasks(records("firstJob2")) == 2, "\(records("firstJob2"))")
        #expect(records("firstJob1").allSatisfy { $0["POOLD_INSTANCE"]?.stringValue == first })
        #expect(records("secondJob1").allSatisfy { $0["POOLD_INSTANCE"]?.stringValue == second })
        let text = result["firstText"]?["stdout"]?.stringValue ?? ""
        #expect(text.split(separator: "\n").allSatisfy { $0.contains(" job 1: ") }, "each line names its job:\n\(text)")
        // -n 2: the last two of job 1's records.
        #expect(records("lastTwo").compactMap { $0["MESSAGE"]?.stringValue } == records("firstJob1").suffix(2).compactMap { $0["MESSAGE"]?.stringValue })
        #expect(result["sinceFuture"]?["exit"]?.intValue == 0 && result["sinceFuture"]?["stderr"]?.stringValue?.contains("no records") == true)
        // No record of a job: perhaps it ran above job-log-rate, and its record says how it went.
        #expect(result["sinceFuture"]?["stderr"]?.stringValue?.contains("job-log-rate") == true
                && result["sinceFuture"]?["stderr"]?.stringValue?.contains("`poolctl job 1`") == true, "\(result["sinceFuture"] ?? .null)")
        #expect(records("sinceHour").count == records("firstJob1").count)
        // --follow -n 1 printed the last record, then job 2's records as they came.
        let followed = result["followed"]?.stringValue ?? ""
        #expect(result["followedFirst"]?.stringValue?.split(separator: "\n").count == 1, "\(result["followedFirst"] ?? .null)")
        #expect(followed.contains("job 2: job 2 (tasks) started") && followed.contains("job 2: job 2 (tasks) succeeded"), "\(followed)")
        // Once the daemon has stopped, its socket cannot say whose records to show: exit 3 with
        // the way to ask by identity, which still works.
        #expect(result["stopped"]?["exit"]?.intValue == 3)
        #expect(result["stopped"]?["stderr"]?.stringValue?.contains("--instance") == true, "\(result["stopped"] ?? .null)")
        #expect(tasks(records("stoppedByInstance")) == 3)
    }

    /// As under systemd, journald limits what it keeps of the daemon's unit: logging every job's
    /// lines, a burst of trivial jobs loses most of them there; at the default job-log-rate every
    /// job is in the journal, its lines whole or counted in a summary.
    @Test func atTheDefaultJobLogRateJournaldKeepsEveryJobsAccount() throws {
        let result = try journalScript("journal-rate-limit.py")
        let jobs = try #require(result["jobs"]?.intValue)
        for mode in ["everyJob", "default"] {
            #expect(result[mode]?["succeeded"]?.intValue == jobs, "\(mode): \(result)")
            // journald took the daemon and its workers for the unit whose cgroup they run in.
            guard case .array(let units)? = result[mode]?["unit"], units.count == 1,
                  units[0].stringValue?.hasSuffix("-\(mode).service") == true else {
                Issue.record("\(mode): the records are not the unit's, so no rate limit applies: \(result)")
                continue
            }
        }
        func count(_ mode: String, _ key: String) -> Int { result[mode]?[key]?.intValue ?? -1 }
        // Every line logged: three records a job, of which journald kept well under all.
        let kept = count("everyJob", "started") + count("everyJob", "finished") + count("everyJob", "workerLines")
        #expect(kept > 0 && kept < 3 * jobs * 3 / 4, "journald kept \(kept) of \(3 * jobs) records: \(result)")
        // The default: each logged job's three records, and the others summed up.
        let logged = count("default", "finished")
        #expect(logged > 0 && count("default", "started") == logged && count("default", "workerLines") == logged, "\(result)")
        #expect(count("default", "summaries") >= 1 && logged + count("default", "summedUp") == jobs, "\(result)")
    }

    @Test func poolctlLogsWithoutAJournalSaysSo() throws {
        // On a machine with journal files this would read them; here (and in CI) there are none.
        let hasJournal = ["/run/log/journal", "/var/log/journal"].contains {
            ((try? FileManager.default.subpathsOfDirectory(atPath: $0)) ?? []).contains { $0.hasSuffix(".journal") }
        }
        try #require(!hasJournal, "this machine keeps a journal; the no-journal message cannot be checked here")
        let logs = try runProgram(Binaries.poolctl, ["logs", "7"])
        #expect(logs.status == 3)
        #expect(logs.stderr.contains("no journal"), "\(logs.stderr)")
    }

    @Test func theCatalogExplainsEveryMessageID() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let catalogs = root.path + "/usr/lib/systemd/catalog"
        try FileManager.default.createDirectory(atPath: catalogs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.path + "/var/lib/systemd/catalog", withIntermediateDirectories: true)
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../systemd/poold.catalog").path
        try FileManager.default.copyItem(atPath: source, toPath: catalogs + "/poold.catalog")
        #expect(try runProgram("/usr/bin/journalctl", ["--root=" + root.path, "--update-catalog"]).status == 0)
        let listed = try runProgram("/usr/bin/journalctl", ["--root=" + root.path, "--list-catalog"])
        // Job started, finished, failed; worker died, respawned; slot failed; a dead instance's IPC objects removed.
        for id in ["3d5a17d5df6c48818c5df9e26bb90bc8", "4e2736b9db6e49708a7adf1dac1f286b", "12658f1223894221b1f97a89c8bb8a69",
                   "4c1a8be154c14a6aaeea7baed46ed181", "eb4947718afe4edb9e449453eecb619d", "771a84f070034c61aab1b0ce01b53142",
                   "9737477a8198492d947cf7f093ed2bf1"] {
            #expect(listed.stdout.contains(id + " poold: "), "no catalog entry for \(id)")
        }
    }
}
