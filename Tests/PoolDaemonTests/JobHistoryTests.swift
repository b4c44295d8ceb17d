import Foundation
import GRDB
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The job history across restarts of the real daemon: a clean stop, a SIGKILL, the limit, and a
/// state directory that cannot be used.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct JobHistoryTests {
    private func jobs(_ daemon: DaemonHarness) throws -> [JobRecord] {
        let listed = try daemon.poolctl("--json", "jobs", "--limit", "100")
        #expect(listed.status == 0, "\(listed.stderr)")
        return try listed.json(ListJobsReply.self).jobs
    }

    private func runCounter(_ daemon: DaemonHarness, iterations: Int = 1000) throws -> JobRecord {
        let run = try daemon.poolctl("--json", "run", "counter", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "\(iterations)")
        #expect(run.status == 0, "\(run.stderr)")
        return try run.json(JobRecord.self)
    }

    /// Opens the history file read-only (as another program would) and runs `body` on it.
    private func inspect<T>(_ state: TemporaryDirectory, _ body: (Database) throws -> T) throws -> T {
        try inspect(directory: state.path, body)
    }

    private func inspect<T>(directory: String, _ body: (Database) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabaseQueue(path: directory + "/history.sqlite", configuration: configuration)
        defer { try? database.close() }
        return try database.read(body)
    }

    /// Reads the daemon's notifications until one contains `text` (nil if none within 50).
    private func notification(_ daemon: DaemonHarness, containing text: String) -> String? {
        for _ in 0..<50 {
            guard let message = daemon.nextNotification(timeoutSeconds: 10) else { return nil }
            if message.contains(text) { return message }
        }
        return nil
    }

    /// Fills the file system of `directory` (from outside the namespace that sees it) to the last page.
    private func fill(_ directory: String) throws {
        let descriptor = open(directory + "/filler", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw HarnessError(description: "cannot create the filler: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        for size in [65536, 4096, 512, 1] {
            let chunk = [UInt8](repeating: 0xa5, count: size)
            while chunk.withUnsafeBytes({ write(descriptor, $0.baseAddress, size) }) == size {}
        }
        #expect(errno == ENOSPC, "the filler stopped with \(String(cString: strerror(errno)))")
    }

    private func integrityCheck(_ state: TemporaryDirectory) throws -> [String] {
        try inspect(state) { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
    }

    /// The history is written on a thread of its own under SCHED_IDLE, so that its batches give
    /// the core to a woken event loop or worker at once (a Run's tail on two cores); jobs are
    /// still recorded.
    @Test func theHistoryIsWrittenByABackgroundThreadOfItsOwn() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let daemon = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? daemon.stop() }
        let tasks = try daemon.poolctl("--json", "run", "tasks", "--count", "1")
        #expect(tasks.status == 0, "\(tasks.stderr)")
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/task").map { task in
            let stat = procText("/proc/\(daemon.pid)/task/\(task)/stat")
            // After the command's closing parenthesis: state is field 3, nice field 19, policy 41.
            let fields = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
            return (name: procText("/proc/\(daemon.pid)/task/\(task)/comm").trimmingCharacters(in: .whitespacesAndNewlines),
                    nice: Int(fields[16]) ?? -1, policy: Int32(fields[38]) ?? -1)
        }
        let writers = threads.filter { $0.name == "poold-history" }
        // SCHED_IDLE is 5 and SCHED_OTHER 0 (linux/sched.h; Glibc shows them only with _GNU_SOURCE).
        #expect(writers.count == 1 && writers.allSatisfy { $0.policy == 5 }, "\(threads)")
        #expect(threads.filter { $0.name.hasPrefix("NIO-ELT") }.map { [$0.nice, Int($0.policy)] } == [[0, 0]],
                "the event loop keeps its priority: \(threads)")
        try daemon.stop()
        #expect(try inspect(state) { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM job") } == 1)
    }

    @Test func jobsSurviveACleanRestartWithTheirResultsAndNewIDsContinue() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 2, stateDirectory: state.path)
        defer { try? first.stop() }
        let counter = try runCounter(first, iterations: 20_000)
        let tasksRun = try first.poolctl("--json", "run", "tasks", "--count", "3")
        #expect(tasksRun.status == 0, "\(tasksRun.stderr)")
        let tasks = try tasksRun.json(JobRecord.self)
        let long = try first.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        let longID = try long.json(JobRecord.self).id
        #expect(try first.poolctl("cancel", "\(longID)").status == 0)
        let cancelled = try first.waitForJob(longID)
        #expect(cancelled.state == .cancelled)
        let before = try jobs(first)
        #expect(before.map(\.id) == [longID, tasks.id, counter.id])
        try first.stop()

        let second = try DaemonHarness.start(workers: 2, stateDirectory: state.path)
        defer { try? second.stop() }
        // Every field as it was: parameters, slots, timestamps, result, error.
        let after = try jobs(second)
        #expect(after == before)
        #expect(after.map(\.state) == [.cancelled, .succeeded, .succeeded])
        #expect(after.last?.result == counter.result && counter.result != nil)
        let shown = try second.poolctl("--json", "job", "\(tasks.id)")
        #expect(shown.status == 0 && (try? shown.json(JobRecord.self)) == tasks, "\(shown.stderr)")
        // An earlier run's job has ended: cancelling it changes nothing, as for any ended job.
        let cancelAgain = try second.poolctl("--json", "cancel", "\(counter.id)")
        #expect(cancelAgain.status == 0 && (try? cancelAgain.json(JobRecord.self)) == after.last, "\(cancelAgain.stderr)")

        let next = try runCounter(second)
        #expect(next.id == longID + 1, "ids continue after the earlier run's")
        #expect(try jobs(second).map(\.id) == [next.id, longID, tasks.id, counter.id])
        let table = try second.poolctl("jobs")
        #expect(table.status == 0 && table.stdout.contains("cancelled") && table.stdout.contains("succeeded"), "\(table.stdout)")
        try second.stop()
        #expect(try integrityCheck(state) == ["ok"])
    }

    @Test func aJobRunningWhenTheDaemonIsKilledIsInterruptedAfterTheRestart() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 2, stateDirectory: state.path)
        defer { try? first.stop() }
        let done = try runCounter(first)
        // A detached Run replies once the job is in the history: here, as running.
        let long = try first.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "2", "--iterations", "10000000000")
        #expect(long.status == 0, "\(long.stderr)")
        let running = try long.json(JobRecord.self)
        #expect(running.state == .running)
        try first.killAndCleanUp()

        // What the crash left: intact, the job still recorded as running.
        #expect(try integrityCheck(state) == ["ok"])
        let stored = try inspect(state) { try String.fetchOne($0, sql: "SELECT state FROM job WHERE id = ?", arguments: [running.id]) }
        #expect(stored == "running")

        let second = try DaemonHarness.start(workers: 2, stateDirectory: state.path)
        defer { try? second.stop() }
        #expect(second.log.contains("interrupted"), "the daemon says which jobs it found interrupted")
        let listed = try jobs(second)
        #expect(listed.map(\.id) == [running.id, done.id])
        let interrupted = try #require(listed.first)
        #expect(interrupted.state == .interrupted && interrupted.state.isFinished)
        #expect(interrupted.error?.contains("running") == true, "\(interrupted.error ?? "no error")")
        #expect(interrupted.startedAt == running.startedAt && interrupted.slots == running.slots && interrupted.finishedAt == nil)
        #expect(listed.last == done)
        // poolctl shows it, and `job --wait` exits 1 for it as for any job that did not succeed.
        let table = try second.poolctl("jobs")
        #expect(table.stdout.contains("interrupted"), "\(table.stdout)")
        let wait = try second.poolctl("job", "\(running.id)", "--wait")
        #expect(wait.status == 1 && wait.stdout.contains("job \(running.id) counter interrupted"), "\(wait.stdout)\(wait.stderr)")
        // After a crash the ids go on after the block of 1000 the lock file had reserved (JobHistory.idBlock).
        #expect(try runCounter(second).id == 1001)
        try second.stop()
        #expect(try integrityCheck(state) == ["ok"])
    }

    @Test func aJobQueuedWhenTheDaemonIsKilledIsRecordedAsQueuedAndInterruptedAfterTheRestart() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? first.stop() }
        let long = try first.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        #expect(long.status == 0, "\(long.stderr)")
        #expect(try long.json(JobRecord.self).state == .running)
        // The only worker is busy: the next job waits, and a detached Run replies once the job is
        // recorded (a job that starts at once is recorded by its start, one that waits by its queueing).
        let waiting = try first.poolctl("--json", "run", "tasks", "--detach", "--count", "1")
        #expect(waiting.status == 0, "\(waiting.stderr)")
        let queued = try waiting.json(JobRecord.self)
        #expect(queued.state == .queued)
        try first.killAndCleanUp()

        let stored = try inspect(state) { try String.fetchOne($0, sql: "SELECT state FROM job WHERE id = ?", arguments: [queued.id]) }
        #expect(stored == "queued")
        let second = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? second.stop() }
        let interrupted = try #require(try jobs(second).first { $0.id == queued.id })
        #expect(interrupted.state == .interrupted && interrupted.startedAt == nil)
        #expect(interrupted.error?.contains("was queued") == true, "\(interrupted.error ?? "no error")")
        try second.stop()
    }

    @Test func theHistoryKeepsTheLastNJobsAcrossRestarts() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 1, arguments: ["--history-limit", "3"], stateDirectory: state.path)
        defer { try? first.stop() }
        let ids = try (1...5).map { _ in try runCounter(first).id }
        #expect(try jobs(first).map(\.id) == Array(ids.suffix(3).reversed()))
        let forgotten = try first.poolctl("job", "\(ids[0])")
        #expect(forgotten.status == 4 && forgotten.stderr.contains("no job \(ids[0])"), "\(forgotten.stderr)")
        try first.stop()
        #expect(try inspect(state) { try Int.fetchAll($0, sql: "SELECT id FROM job ORDER BY id DESC") } == Array(ids.suffix(3).reversed()))

        let second = try DaemonHarness.start(workers: 1, arguments: ["--history-limit", "3"], stateDirectory: state.path)
        defer { try? second.stop() }
        #expect(try jobs(second).map(\.id) == Array(ids.suffix(3).reversed()))
        let sixth = try runCounter(second).id
        #expect(try jobs(second).map(\.id) == [sixth, ids[4], ids[3]])
        try second.stop()

        // A lower limit prunes at the next start.
        let third = try DaemonHarness.start(workers: 1, arguments: ["--history-limit", "2"], stateDirectory: state.path)
        defer { try? third.stop() }
        #expect(try jobs(third).map(\.id) == [sixth, ids[4]])
        try third.stop()
        #expect(try inspect(state) { try Int.fetchOne($0, sql: "SELECT count(*) FROM job") } == 2)
    }

    @Test func anUnusableStateDirectoryStopsTheStartWithItsPathAndReason() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/a-file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let prefix = "/poold-t\(getpid())-badstate"
        let socket = directory.path + "/p.sock"
        let result = try runProgram(Binaries.poold, ["--socket", socket, "--workers", "1", "--ipc-prefix", prefix,
                                                     "--log-target", "stderr", "--state-dir", file + "/state"])
        #expect(result.status == 1)
        #expect(result.stderr.contains(file) && result.stderr.contains("Not a directory (errno \(ENOTDIR))") && result.stderr.contains("--state-dir"),
                "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket is released")
        #expect(IPCObjects.named(withPrefix: prefix) == [])

        let limit = try runProgram(Binaries.poold, ["--socket", socket, "--history-limit", "0"])
        #expect(limit.status == 2 && limit.stderr.contains("--history-limit must be at least 1"), "\(limit.stderr)")
    }

    @Test func aRemovedStateDirectoryIsFoundAndRebuiltWithEveryJobTheDaemonHolds() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let state = root.path + "/state"
        let daemon = try DaemonHarness.start(workers: 2, followNotifications: true, stateDirectory: state)
        defer { try? daemon.stop() }
        let first = try runCounter(daemon), second = try runCounter(daemon)
        try FileManager.default.removeItem(atPath: state)

        // Found within a second (or at the next write), said in the log, Status and STATUS=.
        let status = try daemon.waitForStatus { $0.history?.lastIncident != nil }
        let incident = try #require(status.history?.lastIncident)
        #expect(incident.contains("history.lock was removed") && incident.contains("made again"), "\(incident)")
        #expect(status.history?.problem == nil)
        #expect(daemon.log.contains("was removed") && daemon.log.contains("recreating the directory"), "\(daemon.log)")
        #expect(notification(daemon, containing: "job history: ") != nil, "STATUS= does not tell")

        // Rebuilt with what the daemon held: a detached Run replies once it is written, with them.
        let detached = try daemon.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(detached.status == 0, "\(detached.stderr)")
        let third = try detached.json(JobRecord.self)
        #expect(third.id == second.id + 1)
        let stored = try inspect(directory: state) { try Int.fetchAll($0, sql: "SELECT id FROM job ORDER BY id") }
        #expect(stored == [first.id, second.id, third.id])

        // And held again: a second daemon cannot take the path.
        let other = try TemporaryDirectory()
        defer { other.remove() }
        let prefix = "/poold-t\(getpid())-rebuiltstate"
        let intruder = try runProgram(Binaries.poold, ["--socket", other.path + "/p.sock", "--workers", "1", "--ipc-prefix", prefix,
                                                       "--log-target", "stderr", "--state-dir", state])
        #expect(intruder.status == 1 && intruder.stderr.contains("another poold (pid \(daemon.pid))"), "\(intruder.stderr)")
        #expect(IPCObjects.named(withPrefix: prefix) == [])

        // The database alone removed (the lock stays, still held): made again the same way.
        for suffix in ["", "-wal", "-shm"] { unlink(state + "/history.sqlite" + suffix) }
        let again = try daemon.waitForStatus { $0.history?.lastIncident?.contains("history.sqlite is gone") == true }
        #expect(again.history?.problem == nil, "\(String(describing: again.history))")

        // Removed, and its path taken by a plain file: a problem until the path is free again.
        let plain = root.path + "/plain"
        #expect(FileManager.default.createFile(atPath: plain, contents: Data()))
        try FileManager.default.removeItem(atPath: state)
        #expect(rename(plain, state) == 0)
        let blocked = try daemon.waitForStatus { $0.history?.problem != nil }
        let problem = blocked.history?.problem ?? ""
        #expect(problem.contains("was removed, and the job history cannot be made again") && problem.contains("Not a directory"), "\(problem)")
        #expect(notification(daemon, containing: "job history failing: ") != nil, "STATUS= does not tell")
        try FileManager.default.removeItem(atPath: state)
        let freed = try daemon.waitForStatus { $0.history?.problem == nil }
        #expect(freed.history?.lastIncident?.contains("history.lock was removed; the state directory") == true, "\(String(describing: freed.history))")
        try daemon.stop()
        #expect(try inspect(directory: state) { try Int.fetchAll($0, sql: "SELECT id FROM job ORDER BY id") } == [first.id, second.id, third.id])
    }

    @Test func aFullDiskRefusesDetachedRunsSaysSoAndNeverHandsOutAnIDTwice() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let namespace = try IPCNamespace(smallDisk: (root.path, 2048))
        defer { namespace.close() }
        // SQLite resolves /proc/PID/root to the host's root, so the test reads the file through the daemon.
        let state = root.path + "/state", disk = namespace.inside(root.path)
        let daemon = try DaemonHarness.start(workers: 2, followNotifications: true, stateDirectory: state, namespace: namespace)
        defer { try? daemon.stop() }
        let before = try runCounter(daemon)
        try fill(disk)

        // A detached Run is acknowledged only once recorded: refused, naming the disk.
        let refused = try daemon.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(refused.status == 4 && refused.stdout.contains("ResourceLimit"), "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stderr.contains(state + "/history.sqlite") && refused.stderr.contains("free on the file system of \(state)"), "\(refused.stderr)")
        // The failure shows in Status and STATUS= while it lasts; the next detached Run is refused at once.
        let failing = try daemon.status()
        #expect(failing.history?.problem?.contains("cannot write to \(state)/history.sqlite") == true, "\(String(describing: failing.history))")
        #expect(notification(daemon, containing: "job history failing: cannot write") != nil, "STATUS= does not tell")
        let shown = try daemon.poolctl("status")
        #expect(shown.stdout.contains("job history failing: cannot write to \(state)/history.sqlite"), "\(shown.stdout)")
        let again = try daemon.poolctl("run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(again.status == 4 && again.stderr.contains("the history cannot be written"), "\(again.stderr)")
        // A Run that waits runs on: its record waits in memory.
        let waited = try runCounter(daemon)
        let unwritten = try daemon.status().history?.unwrittenJobs ?? 0
        #expect(waited.state == .succeeded && unwritten > 0, "\(unwritten) records wait")

        // Space again: the records are written within a second, and Status says it is over.
        try FileManager.default.removeItem(atPath: disk + "/filler")
        let recovered = try daemon.waitForStatus { $0.history?.problem == nil }
        #expect(recovered.history?.lastIncident?.contains("resolved") == true, "\(String(describing: recovered.history))")
        let accepted = try daemon.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "1000")
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let acceptedID = try accepted.json(JobRecord.self).id

        // Full again, a job that only memory records, then a crash: its id is not handed out again.
        try fill(disk)
        let lost = try runCounter(daemon)
        try daemon.killAndCleanUp()
        try FileManager.default.removeItem(atPath: disk + "/filler")
        let restarted = try DaemonHarness.start(workers: 2, stateDirectory: state, namespace: namespace)
        defer { try? restarted.stop() }
        // What was written once the disk had room is there (the listing comes from the file);
        // the lost job's record is not, and its id comes after.
        let listed = try jobs(restarted)
        #expect(Set([acceptedID, waited.id, before.id]).isSubset(of: listed.map(\.id)) && !listed.map(\.id).contains(lost.id), "\(listed.map(\.id))")
        // The refused detached job, if it got an id (the refusal is at once when an earlier write
        // had failed already), was cancelled before it ran, and says why.
        let refusedJobs = listed.filter { ![acceptedID, waited.id, before.id].contains($0.id) }
        #expect(refusedJobs.count <= 1 && refusedJobs.allSatisfy { $0.state == .cancelled && $0.error?.contains("could not be recorded") == true },
                "\(refusedJobs)")
        // After the crash the ids go on after the block the lock file had reserved.
        #expect(try runCounter(restarted).id == 1001 && lost.id < 1000)
        try restarted.stop()
    }

    @Test func aStartOnAFullDiskThatMustMarkInterruptedJobsNamesTheDisk() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let namespace = try IPCNamespace(smallDisk: (root.path, 2048))
        defer { namespace.close() }
        let state = root.path + "/state"
        let daemon = try DaemonHarness.start(workers: 1, stateDirectory: state, namespace: namespace)
        defer { try? daemon.stop() }
        let long = try daemon.poolctl("--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "1", "--no-split", "--iterations", "10000000000")
        #expect(long.status == 0, "\(long.stderr)")
        try daemon.killAndCleanUp()
        try fill(namespace.inside(root.path))
        let prefix = "/poold-t\(getpid())-fullstart"
        let start = try runProgram("/usr/bin/nsenter", namespace.enterArguments + [
            Binaries.poold, "--socket", root.path + "/p.sock", "--workers", "1", "--ipc-prefix", prefix, "--log-target", "stderr", "--state-dir", state])
        #expect(start.status == 1)
        #expect(start.stderr.contains("cannot prepare the job history \(state)/history.sqlite") && start.stderr.contains("the disk is full, with 0 bytes free"),
                "\(start.stderr)")
        #expect(IPCObjects.named(withPrefix: prefix, in: namespace) == [])
    }

    @Test func idsNoPooldHandsOutAreSetAsideAndNoOverflowFollows() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? first.stop() }
        let ids = try (1...2).map { _ in try runCounter(first).id }
        try first.stop()
        // Rows as a damaged or hand-edited file could hold: ids at the very top of Int64.
        let database = try DatabaseQueue(path: state.path + "/history.sqlite")
        try database.write { db in
            // And numbers no integer holds where poolctl prints integers.
            try db.execute(sql: #"UPDATE job SET result = json_set(result, '$.deadWorkers', json('[{"pid":1e300,"slot":-1e300,"exit":"?"}]')) WHERE id = ?"#,
                           arguments: [ids[0]])
            for id in [Int64.max, Int64.max - 1] {
                try db.execute(sql: "INSERT INTO job SELECT ?, kind, state, parameters, slots, submittedAt, startedAt, finishedAt, result, error, log FROM job WHERE id = 1",
                               arguments: [id])
            }
        }
        try database.close()

        let second = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? second.stop() }
        #expect(second.log.contains("job_set_aside") && second.log.contains("\(Int64.max)"), "\(second.log)")
        #expect(try jobs(second).map(\.id) == ids.reversed())
        #expect(try runCounter(second).id == ids[1] + 1)
        let shown = try second.poolctl("job", "\(ids[0])")
        #expect(shown.status == 0 && shown.stdout.contains("worker pid 9000000000000000000 in slot -9000000000000000000 died"),
                "\(shown.status): \(shown.stdout)\(shown.stderr)")
        // An id no job has, however large: a reason, not a bare error name.
        let cancel = try second.poolctl("cancel", "\(Int64.max)")
        #expect(cancel.status == 4 && cancel.stderr.contains("no job \(Int64.max); the history holds jobs \(ids[0])-\(ids[1] + 1) (`poolctl jobs`"),
                "\(cancel.stderr)")
        try second.stop()
        let setAside = try inspect(state) { try Int64.fetchAll($0, sql: "SELECT id FROM job_set_aside ORDER BY id") }
        #expect(setAside == [Int64.max - 1, Int64.max])
    }

    @Test func aDamagedHistoryIsMovedAsideWithWhatCanBeReadKeptAndSaidSo() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let first = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? first.stop() }
        _ = try runCounter(first)
        try first.stop()
        // 300 rows of about 2 KB each, then one page in the middle of the file overwritten.
        let path = state.path + "/history.sqlite"
        let database = try DatabaseQueue(path: path)
        try database.write { db in
            let log = "[\"" + String(repeating: "x", count: 2000) + "\"]"
            for id in 2...300 {
                try db.execute(sql: "INSERT INTO job SELECT ?, kind, state, parameters, slots, submittedAt, startedAt, finishedAt, result, error, ? FROM job WHERE id = 1",
                               arguments: [id, log])
            }
        }
        try database.close()
        let file = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try file.seek(toOffset: 4096 * 80)
        try file.write(contentsOf: Data(repeating: 0x5a, count: 4096))
        try file.close()

        let second = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? second.stop() }
        let log = second.log
        #expect(log.contains("is damaged (quick_check:") && log.contains("it was moved to \(path).damaged-") && log.contains("jobs that could be read"), "\(log)")
        let incident = try #require(try second.status().history?.lastIncident)
        #expect(incident.contains("is damaged"), "\(incident)")
        let kept = try jobs(second).count
        #expect(kept > 0 && kept <= 100, "\(kept) jobs listed")  // ListJobs' limit in `jobs` is 100
        let aside = try FileManager.default.contentsOfDirectory(atPath: state.path).filter { $0.hasPrefix("history.sqlite.damaged-") }
        #expect(aside.count == 1, "\(aside)")
        try second.stop()
        #expect(try integrityCheck(state) == ["ok"])
        let stored = try inspect(state) { try Int.fetchOne($0, sql: "SELECT count(*) FROM job") } ?? 0
        #expect(stored > 100 && stored < 300, "\(stored) of 300 rows kept")
    }

    @Test func twoDaemonsNeverShareOneHistory() throws {
        let state = try TemporaryDirectory()
        defer { state.remove() }
        let daemon = try DaemonHarness.start(workers: 1, stateDirectory: state.path)
        defer { try? daemon.stop() }
        let other = try TemporaryDirectory()
        defer { other.remove() }
        let prefix = "/poold-t\(getpid())-secondstate"
        let second = try runProgram(Binaries.poold, ["--socket", other.path + "/p.sock", "--workers", "1", "--ipc-prefix", prefix,
                                                     "--log-target", "stderr", "--state-dir", state.path])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another poold (pid \(daemon.pid))") && second.stderr.contains(state.path), "\(second.stderr)")
        #expect(IPCObjects.named(withPrefix: prefix) == [])
        try daemon.stop()
    }
}
