import Foundation
import GRDB
import Logging
import PoolProtocol
import Synchronization

/// Job records that survive restarts: an SQLite database, `history.sqlite` in the state directory.
///
/// Durability: WAL journal with `synchronous = NORMAL`. A transaction is atomic whatever happens;
/// a killed daemon loses nothing it committed (the WAL is in the page cache, which outlives the
/// process), and a power loss may lose the last transactions but never corrupts the file (SQLite
/// syncs the WAL before each checkpoint). FULL would add an fsync to every commit to make even
/// those last records survive a power loss, which a job history does not need.
///
/// Writes never block the caller: `save` replaces the job's pending record and, if none is
/// scheduled, schedules a write `coalescing` later on GRDB's serial writer queue; that write takes
/// everything pending by then in one transaction, and prunes. So a job's queued, running and
/// finished records are usually one row write, and a stream of short jobs one transaction per
/// interval instead of three per job. The interval is short because a write is a burst of CPU
/// that delays the event loop when both share a core: 5 ms of jobs take about 0.4 ms to write, 20
/// ms of them 1 ms, and that became the tail of a Run's round trip. A SIGKILL may lose the changes
/// of the last interval; `whenWritten` writes at once, for what must be on disk before it is
/// acknowledged. `close` writes whatever is still pending and waits for it.
public final class JobHistory: Sendable {
    public static let fileName = "history.sqlite"

    public let path: String
    /// Finished jobs kept, newest by id; queued and running ones are kept besides.
    public let limit: Int
    /// How long a change may wait to be written with the ones after it.
    public static let coalescing: DispatchTimeInterval = .milliseconds(5)
    private let database: DatabaseQueue
    private let lock: StateDirectoryLock
    private let logger: Logger
    private let pending = Mutex(Pending())

    private struct Pending {
        var records: [Int: JobRecord] = [:]
        var writeScheduled = false
        /// A write failed and was reported; the next success says so, so the log shows the gap.
        var failing = false
        var closed = false
    }

    private init(path: String, limit: Int, database: DatabaseQueue, lock: StateDirectoryLock, logger: Logger) {
        self.path = path
        self.limit = limit
        self.database = database
        self.lock = lock
        self.logger = logger
    }

    /// Opens (creating it and the directory if need be) and locks the history in `directory`,
    /// bringing its schema up to date. Blocks: call it before the event loop serves.
    public static func open(directory: String, limit: Int, logger: Logger) throws(HistoryError) -> JobHistory {
        precondition(limit >= 1, "the history keeps at least one job")
        let lock = try StateDirectoryLock.acquire(directory: directory)
        let path = directory + "/" + fileName
        let hint = "move it aside to start a new history"
        do {
            var configuration = Configuration()
            configuration.journalMode = .wal  // GRDB then sets synchronous = NORMAL
            configuration.label = "poold.history"
            configuration.qos = .utility
            let database = try DatabaseQueue(path: path, configuration: configuration)
            let migrator = HistorySchema.migrator
            if try database.read(migrator.hasBeenSuperseded) {
                lock.release()
                throw HistoryError("the job history \(path) was written by a newer poold (its schema has migrations this one does not know); \(hint)")
            }
            try migrator.migrate(database)
            return JobHistory(path: path, limit: limit, database: database, lock: lock, logger: logger)
        } catch let error as HistoryError {
            throw error
        } catch let error as DatabaseError {
            lock.release()
            throw HistoryError("cannot open the job history \(path): \(error.message ?? "\(error.resultCode)") (SQLite \(error.extendedResultCode.rawValue)); \(hint)")
        } catch {
            lock.release()
            throw HistoryError("cannot open the job history \(path): \(error); \(hint)")
        }
    }

    /// Marks the jobs the previous daemon left queued or running as `interrupted`, prunes beyond the
    /// limit and reads what is kept. Blocks: call it before the event loop serves.
    public func recover() throws(HistoryError) -> RecoveredHistory {
        do {
            let limit = limit
            return try database.write { db in
                var recovered = RecoveredHistory()
                let unfinished = try Row.fetchAll(db, sql: "SELECT id, state FROM job WHERE state IN ('queued', 'running') ORDER BY id")
                for row in unfinished {
                    let id: Int = row["id"], state: String = row["state"]
                    try db.execute(sql: "UPDATE job SET state = ?, error = ? WHERE id = ?",
                                   arguments: [JobState.interrupted.rawValue, Self.interruptionReason(state), id])
                    recovered.interrupted.append(id)
                }
                try db.execute(sql: HistorySchema.prune, arguments: [limit])
                recovered.highestID = try Int.fetchOne(db, sql: "SELECT max(id) FROM job") ?? 0
                let decoder = JSONDecoder()
                for row in try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY id DESC LIMIT ?", arguments: [limit]) {
                    do {
                        recovered.records.append(try StoredJob.record(row, decoder: decoder))
                    } catch {
                        recovered.unreadable.append("job \(row["id"] as Int? ?? 0): \(error)")
                    }
                }
                return recovered
            }
        } catch {
            throw HistoryError("cannot read the job history \(path): \(error)")
        }
    }

    static func interruptionReason(_ state: String) -> String {
        "poold stopped while the job was \(state) (a crash, SIGKILL or power loss)"
    }

    /// Records a job's current state, without waiting.
    public func save(_ record: JobRecord) {
        let schedule = pending.withLock { pending in
            guard !pending.closed else { return false }
            pending.records[record.id] = record
            defer { pending.writeScheduled = true }
            return !pending.writeScheduled
        }
        if schedule {
            DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + Self.coalescing) { [self] in
                // Under the lock that `close` takes first: once closed, the database takes no more work.
                pending.withLock { pending in
                    guard !pending.closed else { return }
                    database.asyncWriteWithoutTransaction { [self] db in writePending(db) }
                }
            }
        }
    }

    /// Writes every record saved before this call now, then runs `body` on the writer's queue (also
    /// when the write failed, which is logged).
    public func whenWritten(_ body: @escaping @Sendable () -> Void) {
        database.asyncWriteWithoutTransaction { [self] db in
            writePending(db)
            body()
        }
    }

    /// Writes what is pending, waits for it, and closes the database and the lock. Blocks: call it
    /// once the event loop has stopped.
    public func close() {
        let alreadyClosed = pending.withLock { pending in
            defer { pending.closed = true }
            return pending.closed
        }
        guard !alreadyClosed else { return }
        database.writeWithoutTransaction { db in writePending(db) }
        let unwritten = pending.withLock { $0.records.keys.sorted() }
        if !unwritten.isEmpty {
            logger.error("job history: \(unwritten.count) job records could not be written to \(path) and are lost", metadata: ["jobs": "\(unwritten)"])
        }
        do {
            try database.close()
        } catch {
            logger.warning("job history: closing \(path): \(error)")
        }
        lock.release()
    }

    /// A pragma's value on the store's own connection (journal_mode and synchronous are per
    /// connection), for tests.
    func pragma(_ name: String) throws -> String? {
        try database.read { try String.fetchOne($0, sql: "PRAGMA \(name)") }
    }

    /// On the writer's queue: everything pending, in one transaction, then pruning.
    private func writePending(_ db: Database) {
        let batch = pending.withLock { pending in
            defer {
                pending.records = [:]
                pending.writeScheduled = false
            }
            return pending.records
        }
        guard !batch.isEmpty else { return }
        let rows = batch.keys.sorted().map { (id: $0, arguments: StoredJob.arguments(batch[$0]!)) }
        do {
            try db.inTransaction {
                // Prepared once per connection, not parsed again for every write.
                let upsert = try db.cachedStatement(sql: HistorySchema.upsert)
                for row in rows { try upsert.execute(arguments: row.arguments) }
                try db.cachedStatement(sql: HistorySchema.prune).execute(arguments: [limit])
                return .commit
            }
            let recovered = pending.withLock { pending in
                defer { pending.failing = false }
                return pending.failing
            }
            if recovered { logger.notice("job history: writing to \(path) works again") }
        } catch {
            // Kept for the next write (a newer record of the same job replaces it meanwhile).
            let firstFailure = pending.withLock { pending in
                for row in rows where pending.records[row.id] == nil { pending.records[row.id] = batch[row.id] }
                defer { pending.failing = true }
                return !pending.failing
            }
            if firstFailure {
                logger.error("job history: cannot write to \(path): \(error); the jobs stay in memory and are written with the next change")
            }
        }
    }
}
