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
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabaseQueue(path: state.path + "/history.sqlite", configuration: configuration)
        defer { try? database.close() }
        return try database.read(body)
    }

    private func integrityCheck(_ state: TemporaryDirectory) throws -> [String] {
        try inspect(state) { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
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
        #expect(try runCounter(second).id == running.id + 1)
        try second.stop()
        #expect(try integrityCheck(state) == ["ok"])
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
