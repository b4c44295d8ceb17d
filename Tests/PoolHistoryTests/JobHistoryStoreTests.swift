import Foundation
import GRDB
import Logging
@testable import PoolHistory
import PoolProtocol
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The store on its own: what it writes, what it reads back at start-up, and what it refuses.
@Suite struct JobHistoryStoreTests {
    private let logger = Logger(label: "history-test")

    private func makeDirectory() throws -> String {
        var template = Array("/tmp/poold-history-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HistoryError("mkdtemp failed") }
        return String(cString: made)
    }

    private func record(_ id: Int, _ state: JobState, result: JSONValue? = nil) -> JobRecord {
        JobRecord(id: id, kind: "counter", state: state,
                  parameters: .object(["mode": .string("locked"), "iterations": .number(1000), "ratio": .number(0.25)]),
                  slots: state == .queued ? [] : [0, 1], submittedAt: "2026-01-02T03:04:05.678Z",
                  startedAt: state == .queued ? nil : "2026-01-02T03:04:05.700Z",
                  finishedAt: state.isFinished ? "2026-01-02T03:04:06.000Z" : nil,
                  result: result, error: state == .failed ? "the worker in slot 1 failed" : nil,
                  log: state == .succeeded ? ["Produced 1 (queue length = 1)"] : nil)
    }

    private func reopen(_ directory: String, limit: Int = 10) throws -> (JobHistory, RecoveredHistory) {
        let history = try JobHistory.open(directory: directory, limit: limit, logger: logger)
        return (history, try history.recover())
    }

    @Test func recordsComeBackAsTheyWereSavedNewestFirst() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        #expect(try history.recover().records.isEmpty)
        let saved = [
            record(1, .succeeded, result: .object(["actual": .number(9), "workers": .array([.object(["slot": .number(0)])])])),
            record(2, .failed), record(3, .cancelled),
        ]
        // Several states of one job coalesce into its last.
        history.save(record(1, .queued))
        history.save(record(1, .running))
        for job in saved { history.save(job) }
        history.close()

        let (reopened, recovered) = try reopen(directory)
        defer { reopened.close() }
        #expect(recovered.records == saved.reversed())
        #expect(recovered.highestID == 3 && recovered.interrupted.isEmpty && recovered.unreadable.isEmpty)
    }

    @Test func theFileIsWALWithSynchronousNormal() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        #expect(try history.pragma("journal_mode") == "wal")
        #expect(try history.pragma("synchronous") == "1", "NORMAL")
        history.save(record(1, .succeeded))
        history.close()
        let database = try DatabaseQueue(path: directory + "/" + JobHistory.fileName)
        defer { try? database.close() }
        let (mode, integrity, rows) = try database.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try String.fetchAll(db, sql: "PRAGMA integrity_check"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM job"))
        }
        #expect(mode == "wal" && integrity == ["ok"] && rows == 1)
    }

    @Test func unfinishedJobsBecomeInterruptedAtTheNextStart() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        history.save(record(1, .succeeded))
        history.save(record(2, .running))
        history.save(record(3, .queued))
        history.close()

        let (reopened, recovered) = try reopen(directory)
        #expect(recovered.interrupted == [2, 3])
        #expect(recovered.records.map(\.state) == [.interrupted, .interrupted, .succeeded])
        #expect(recovered.records[0].error?.contains("queued") == true && recovered.records[1].error?.contains("running") == true)
        #expect(recovered.records[1].startedAt == record(2, .running).startedAt && recovered.records[1].slots == [0, 1])
        reopened.close()
        // Once marked, they stay so: the next start finds nothing more to interrupt.
        let (again, second) = try reopen(directory)
        defer { again.close() }
        #expect(second.interrupted.isEmpty && second.records == recovered.records)
    }

    @Test func prunesFinishedJobsBeyondTheLimitButNeverLiveOnes() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 3, logger: logger)
        history.save(record(1, .running))
        for id in 2...6 { history.save(record(id, .succeeded)) }
        let written = Mutex(false)
        let done = DispatchSemaphore(value: 0)
        history.whenWritten { failure in
            written.withLock { $0 = failure == nil }
            done.signal()
        }
        done.wait()
        let path = directory + "/" + JobHistory.fileName
        // Read through a connection of its own while the store is open, as after a crash.
        let reader = try DatabaseQueue(path: path)
        #expect(try reader.read { try Int.fetchAll($0, sql: "SELECT id FROM job ORDER BY id") } == [1, 4, 5, 6])
        try reader.close()
        // The running job ends; now it is the oldest finished one and goes.
        history.save(record(1, .succeeded))
        history.close()
        let (reopened, recovered) = try reopen(directory, limit: 3)
        defer { reopened.close() }
        #expect(recovered.records.map(\.id) == [6, 5, 4] && recovered.highestID == 6)
        #expect(written.withLock { $0 })
    }

    /// Records saved faster than they are written pile up in memory; beyond twice the limit the
    /// finished ones that pruning would drop go at once, never a live one.
    @Test func recordsPilingUpInMemoryKeepTheNewestFinishedAndEveryLiveOne() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 3, logger: logger)
        history.save(record(1, .running))
        for id in 2...40 { history.save(record(id, .succeeded)) }
        #expect(history.status.unwrittenJobs <= 2 * 3 + 1, "at most twice the limit of finished ones wait, and the live one")
        history.close()
        let reader = try DatabaseQueue(path: directory + "/" + JobHistory.fileName)
        defer { try? reader.close() }
        let rows = try reader.read { try Row.fetchAll($0, sql: "SELECT id, state FROM job ORDER BY id") }
        #expect(rows.map { "\($0["id"] as Int) \($0["state"] as String)" } == ["1 running", "38 succeeded", "39 succeeded", "40 succeeded"])
    }

    @Test func aSecondStoreOnTheSameDirectoryIsRefused() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        let error = #expect(throws: HistoryError.self) { try JobHistory.open(directory: directory, limit: 10, logger: logger) }
        #expect(error?.description.contains("another poold (pid \(getpid()))") == true, "\(error?.description ?? "")")
        history.close()
        // Released on close.
        try JobHistory.open(directory: directory, limit: 10, logger: logger).close()
    }

    @Test func aFileThatIsNoDatabaseIsNamedAndLeftAlone() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + JobHistory.fileName
        let garbage = Data(repeating: 0x41, count: 8192)
        #expect(FileManager.default.createFile(atPath: path, contents: garbage))
        let error = #expect(throws: HistoryError.self) { try JobHistory.open(directory: directory, limit: 10, logger: logger) }
        #expect(error?.description.contains(path) == true && error?.description.contains("move it aside") == true, "\(error?.description ?? "")")
        #expect(FileManager.default.contents(atPath: path) == garbage)
        // The lock went with the failure.
        let lockFree = #expect(throws: HistoryError.self) { try JobHistory.open(directory: directory, limit: 10, logger: logger) }
        #expect(lockFree?.description.contains("another poold") == false)
    }

    @Test func aHistoryFromANewerSchemaIsRefused() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try JobHistory.open(directory: directory, limit: 10, logger: logger).close()
        let database = try DatabaseQueue(path: directory + "/" + JobHistory.fileName)
        try database.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9: from the future')") }
        try database.close()
        let error = #expect(throws: HistoryError.self) { try JobHistory.open(directory: directory, limit: 10, logger: logger) }
        #expect(error?.description.contains("newer poold") == true, "\(error?.description ?? "")")
    }

    @Test func theLockFileReservesIDsInBlocksAndACleanCloseRecordsTheLastOne() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        func locked() throws -> String { try String(contentsOfFile: directory + "/history.lock", encoding: .utf8) }
        // While the daemon runs, the file holds the end of the block the ids came from: what a
        // daemon that crashed now would continue after.
        for id in 1...3 { try history.reserve(id: id) }
        let first = try locked()
        #expect(first.hasPrefix("pid=\(getpid()) last-job=1000 "), "\(first)")
        try history.reserve(id: 1000)
        let endOfBlock = try locked()
        #expect(endOfBlock.hasPrefix("pid=\(getpid()) last-job=1000 "), "\(endOfBlock)")
        try history.reserve(id: 1001)
        let next = try locked()
        #expect(next.hasPrefix("pid=\(getpid()) last-job=2000 "), "\(next)")
        // A clean close: the next daemon continues right after the last id handed out.
        history.close()
        let closed = try locked()
        #expect(closed.hasPrefix("pid=\(getpid()) last-job=1001 "), "\(closed)")
        let (reopened, recovered) = try reopen(directory)
        #expect(recovered.highestID == 1001)
        reopened.close()
    }

    @Test func idsHandedOutAreKeptByTheLockFileWhateverTheDatabaseHolds() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let history = try JobHistory.open(directory: directory, limit: 10, logger: logger)
        history.save(record(1, .succeeded))
        // Handed out, never saved (a full disk, a crash before the write).
        try history.reserve(id: 7)
        history.close()
        let (reopened, recovered) = try reopen(directory)
        #expect(recovered.records.map(\.id) == [1] && recovered.highestID == 7)
        reopened.close()
        let lock = try String(contentsOfFile: directory + "/history.lock", encoding: .utf8)
        #expect(lock.hasPrefix("pid=\(getpid()) last-job=7 ") && lock.utf8.count == 64, "\(lock)")

        // A lock file of an earlier poold (the pid alone) or one holding no job id poold hands out.
        for text in ["4242\n", "pid=1 last-job=\(Int.max)\n", "pid=1 last-job=-5\n"] {
            try text.write(toFile: directory + "/history.lock", atomically: false, encoding: .utf8)
            let (again, found) = try reopen(directory)
            #expect(found.highestID == 1, "\(text)")
            again.close()
        }
    }

    @Test func anUnusableDirectoryIsNamedWithTheSystemsReason() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/plain-file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let error = #expect(throws: HistoryError.self) { try JobHistory.open(directory: file + "/state", limit: 10, logger: logger) }
        #expect(error?.description == "cannot create the state directory \(file)/state: Not a directory (errno \(ENOTDIR)); choose a writable directory with --state-dir (under systemd: StateDirectory=)")
        let nested = directory + "/a/b/c"
        try JobHistory.open(directory: nested, limit: 10, logger: logger).close()
        #expect(FileManager.default.fileExists(atPath: nested + "/history.sqlite"))
    }
}
