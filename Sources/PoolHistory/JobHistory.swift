import Foundation
import GRDB
import Logging
import NIOCore
import PoolProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Job records that survive restarts: an SQLite database, `history.sqlite` in the state directory.
///
/// Durability: WAL journal with `synchronous = NORMAL`. A transaction is atomic whatever happens;
/// a killed daemon loses nothing it committed (the WAL is in the page cache, which outlives the
/// process), and a power loss may lose the last transactions but never corrupts the file (SQLite
/// syncs the WAL before each checkpoint). FULL would add an fsync to every commit to make even
/// those last records survive a power loss, which a job history does not need.
///
/// Writes never block the caller: `save` replaces the job's pending record and, if none is
/// scheduled, schedules a write `coalescing` later on the writer's serial queue; that write takes
/// everything pending by then in one transaction, and prunes. So a job's queued, running and
/// finished records are usually one row write, and a stream of short jobs one transaction per
/// interval instead of three per job. The interval is short because a write is a burst of CPU
/// that delays the event loop when both share a core: 5 ms of jobs take about 0.4 ms to write, 20
/// ms of them 1 ms, and that became the tail of a Run's round trip. A SIGKILL may lose the changes
/// of the last interval; `whenWritten` writes at once, for what must be on disk before it is
/// acknowledged. `close` writes whatever is still pending and waits for it.
///
/// Trouble is found and survived: a write that fails (a full disk) keeps the records in memory and
/// is retried every `checkInterval`, and `status` says so until it works again; a state directory
/// removed under the daemon (its lock or database file gone) is found by the same check and at
/// every write, and rebuilt: the directory, the lock and the database are made again and every
/// record the daemon holds is written again (`onEveryRecordNeeded`). Job ids are recorded in the
/// lock file as they are handed out (`reserve`), so none is handed out twice, whatever the
/// database holds.
public final class JobHistory: Sendable {
    public static let fileName = "history.sqlite"

    public let directory: String
    public let path: String
    /// Finished jobs kept, newest by id; queued and running ones are kept besides.
    public let limit: Int
    /// How long a change may wait to be written with the ones after it.
    public static let coalescing: TimeAmount = .milliseconds(5)
    /// How often the files are checked and failed writes retried.
    public static let checkInterval: TimeAmount = .seconds(1)

    private let logger: Logger
    /// Every database access, the checks and the rebuilding run on this thread, in order.
    private let writer = HistoryWriterThread(name: "poold-history")
    private let files: Mutex<Files>
    private let pending = Mutex(Pending())
    private let health = Mutex(Health())
    private let observers = Mutex(Observers())

    /// The open database and lock. Replaced only on `writer`; the lock is also written from the
    /// caller of `reserve`, under the mutex, so that it is never written once released.
    private struct Files {
        var database: DatabaseQueue?
        /// The database file as opened: a file at `path` that is not this one means it was replaced.
        var databaseIdentity: FileIdentity?
        var lock: StateDirectoryLock?
        /// The last job id handed out.
        var lastID: Int
        /// The id the lock file holds: ids up to it are handed out without writing it (it is
        /// written a block of ids ahead, `idBlock`); the exact `lastID` is written on close.
        var recordedID: Int
        /// Closed for good: nothing is rebuilt any more.
        var closed = false
    }

    private struct Pending {
        var records: [Int: JobRecord] = [:]
        /// The batch being written, taken out of `records`: still unwritten until the transaction
        /// commits (the writer runs at low priority, so the write can take a while). The batch
        /// itself, not a set of its ids: the loop waits for this lock, and the writer, preempted
        /// by any other thread, should hold it for no more than a swap.
        var writing: [Int: JobRecord] = [:]
        var writeScheduled = false
        var closed = false

        var unwrittenCount: Int { records.count + writing.keys.count { records[$0] == nil } }
    }

    private struct Health {
        var problem: String?
        var problemSince: Date?
        var lastIncident: String?
        /// What was found gone, while the history is being rebuilt (the retries see only "not open").
        var lostBecause: String?
    }

    private struct Observers {
        var healthChanged: (@Sendable () -> Void)?
        var everyRecordNeeded: (@Sendable () -> Void)?
    }

    /// What the check at start found wrong with the file, and what was done about it.
    public let damage: String?

    private init(directory: String, path: String, limit: Int, database: DatabaseQueue, identity: FileIdentity?,
                 lock: StateDirectoryLock, lastID: Int, damage: String?, logger: Logger) {
        self.damage = damage
        self.directory = directory
        self.path = path
        self.limit = limit
        self.files = Mutex(Files(database: database, databaseIdentity: identity, lock: lock, lastID: lastID, recordedID: lastID))
        self.logger = logger
    }

    // MARK: Opening

    /// Opens (creating it and the directory if need be) and locks the history in `directory`,
    /// checks it (`PRAGMA quick_check`: a damaged file is moved aside and what can be read of it
    /// kept, see `RecoveredHistory.damage`) and brings its schema up to date. Blocks: call it
    /// before the event loop serves.
    public static func open(directory: String, limit: Int, logger: Logger) throws(HistoryError) -> JobHistory {
        precondition(limit >= 1, "the history keeps at least one job")
        let lock = try StateDirectoryLock.acquire(directory: directory)
        let path = directory + "/" + fileName
        let hint = "move it aside to start a new history"
        do {
            var (database, identity) = try openDatabase(path: path)
            var damage: String?
            let check: [String]
            do {
                check = try database.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT {
                // Damaged beyond what the check can walk (its schema or first pages).
                check = [error.message ?? "\(error.resultCode)"]
            }
            if check != ["ok"] {
                (database, identity, damage) = try salvage(database, path: path, check: check)
            }
            let migrator = HistorySchema.migrator
            if try database.read(migrator.hasBeenSuperseded) {
                lock.release()
                throw HistoryError("the job history \(path) was written by a newer poold (its schema has migrations this one does not know); \(hint)")
            }
            try migrator.migrate(database)
            let history = JobHistory(directory: directory, path: path, limit: limit, database: database, identity: identity,
                                     lock: lock, lastID: lock.previousLastID,
                                     damage: damage, logger: logger)
            if let damage { history.health.withLock { $0.lastIncident = "\(Self.timestamp(Date())): \(damage)" } }
            return history
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

    private static func openDatabase(path: String) throws -> (DatabaseQueue, FileIdentity?) {
        var configuration = Configuration()
        configuration.journalMode = .wal  // GRDB then sets synchronous = NORMAL
        configuration.label = "poold.history"
        configuration.qos = .utility
        let database = try DatabaseQueue(path: path, configuration: configuration)
        return (database, FileIdentity(path: path))
    }

    /// A database that failed its check: moved aside (with its WAL), and the rows that can still
    /// be read copied into a new one. A damaged page ends a scan, so the rows are read from both
    /// ends of the table. Returns the new database and what was done, for the log and `Status`.
    private static func salvage(_ damaged: DatabaseQueue, path: String, check: [String]) throws -> (DatabaseQueue, FileIdentity?, String) {
        try damaged.close()
        let aside = path + ".damaged-" + timestamp(Date()).filter { $0 != ":" && $0 != "-" }
        for suffix in ["", "-wal", "-shm"] where rename(path + suffix, aside + suffix) != 0 && errno != ENOENT {
            throw HistoryError.system("cannot move the damaged job history to", path: aside + suffix, errno: errno,
                                      hint: "move \(path) aside by hand to start a new history")
        }
        var rows: [Int: StatementArguments] = [:]
        var total: Int?
        if let old = try? DatabaseQueue(path: aside) {
            try? old.read { db in
                total = try? Int.fetchOne(db, sql: "SELECT count(*) FROM job")
                for order in ["ASC", "DESC"] {
                    do {
                        let cursor = try Row.fetchCursor(db, sql: "SELECT \(HistorySchema.columns.joined(separator: ", ")) FROM job ORDER BY id \(order)")
                        while let row = try cursor.next() {
                            guard let id = Int.fromDatabaseValue(row[0] as DatabaseValue), rows[id] == nil else { break }
                            rows[id] = StatementArguments(HistorySchema.columns.indices.map { row[$0] as DatabaseValue })
                        }
                    } catch {
                        continue  // the damaged page: the other direction reads what lies beyond it
                    }
                }
            }
            try? old.close()
        }
        let (database, identity) = try openDatabase(path: path)
        try HistorySchema.migrator.migrate(database)
        var kept = 0
        try database.write { db in
            for id in rows.keys.sorted() {
                // A row that is itself damaged (not JSON where JSON belongs) is not kept.
                if (try? db.execute(sql: HistorySchema.upsert, arguments: rows[id]!)) != nil { kept += 1 }
            }
        }
        let found = check.prefix(3).joined(separator: "; ") + (check.count > 3 ? "; ..." : "")
        let of = total.map { " of \($0)" } ?? ""
        let message = "the job history \(path) is damaged (quick_check: \(found)); it was moved to \(aside) and a new history started with the \(kept)\(of) jobs that could be read; `sqlite3 \(aside) .recover` may find more"
        return (database, identity, message)
    }

    /// Sets aside rows whose ids no poold hands out, marks the jobs the previous daemon left queued
    /// or running as `interrupted`, prunes beyond the limit and reads what is kept. Blocks: call it
    /// before the event loop serves.
    public func recover() throws(HistoryError) -> RecoveredHistory {
        let limit = limit
        let lockedLastID = files.withLock { $0.lastID }
        let database = files.withLock { $0.database }!
        do {
            return try database.write { db in
                var recovered = RecoveredHistory()
                // Ids outside 1...2^53-1 are not poold's (a damaged or hand-made file): left in, they
                // would overflow the next id or be rounded by JSON readers.
                let outside = "id < 1 OR id > \(JobID.maximum)"
                let strangers = try Int.fetchAll(db, sql: "SELECT id FROM job WHERE \(outside) ORDER BY id")
                if !strangers.isEmpty {
                    let columns = HistorySchema.columns.joined(separator: ", ")
                    try db.execute(sql: "INSERT INTO job_set_aside (\(columns), reason, setAsideAt) SELECT \(columns), ?, ? FROM job WHERE \(outside)",
                                   arguments: ["its id is outside 1...\(JobID.maximum), the ids poold hands out", Self.timestamp(Date())])
                    try db.execute(sql: "DELETE FROM job WHERE \(outside)")
                    recovered.setAside = strangers
                }
                let unfinished = try Row.fetchAll(db, sql: "SELECT id, state FROM job WHERE state IN ('queued', 'running') ORDER BY id")
                for row in unfinished {
                    guard let id = Int.fromDatabaseValue(row["id"] as DatabaseValue) else { continue }
                    let state = String.fromDatabaseValue(row["state"] as DatabaseValue) ?? "running"
                    try db.execute(sql: "UPDATE job SET state = ?, error = ? WHERE id = ?",
                                   arguments: [JobState.interrupted.rawValue, Self.interruptionReason(state), id])
                    recovered.interrupted.append(id)
                }
                try db.execute(sql: HistorySchema.prune, arguments: [limit])
                let stored = try Int.fetchOne(db, sql: "SELECT max(id) FROM job") ?? 0
                recovered.highestID = max(stored, lockedLastID)
                let decoder = JSONDecoder()
                for row in try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY id DESC LIMIT ?", arguments: [limit]) {
                    do {
                        recovered.records.append(try StoredJob.record(row, decoder: decoder))
                    } catch {
                        recovered.unreadable.append("job \(Int.fromDatabaseValue(row["id"] as DatabaseValue) ?? 0): \(error)")
                    }
                }
                return recovered
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw HistoryError("cannot prepare the job history \(path) (marking interrupted jobs, pruning): the disk is full, with \(FreeSpace.describe(directory)); free some space and start again")
        } catch {
            throw HistoryError("cannot read the job history \(path): \(error)")
        }
    }

    static func interruptionReason(_ state: String) -> String {
        "poold stopped while the job was \(state) (a crash, SIGKILL or power loss)"
    }

    /// Starts the periodic check of the files (and retry of failed writes). `healthChanged` runs
    /// when `status` changes; `everyRecordNeeded` when the history was rebuilt and every record the
    /// daemon holds must be saved again. Both run on the writer's queue.
    public func start(healthChanged: @escaping @Sendable () -> Void, everyRecordNeeded: @escaping @Sendable () -> Void) {
        observers.withLock {
            $0.healthChanged = healthChanged
            $0.everyRecordNeeded = everyRecordNeeded
        }
        scheduleCheck()
    }

    // MARK: Job ids

    /// Records `id` as handed out, before anyone is told of it: a later daemon continues after it
    /// even when the database never got the job (a crash, a full disk).
    ///
    /// The lock file is written once per `idBlock` ids, recording the end of the block: a daemon
    /// that crashes leaves at most a block of ids unused, never one handed out twice, and a job's
    /// start costs no write.
    public func reserve(id: Int) throws(HistoryError) {
        try files.withLock { (files: inout Files) throws(HistoryError) in
            // Without a lock (the directory removed and not rebuilt yet) the id is kept here and
            // recorded when the lock is taken again.
            if id > files.recordedID, let lock = files.lock {
                let through = id + min(Self.idBlock - 1, JobID.maximum - id)
                try lock.record(lastID: through)
                files.recordedID = through
            }
            files.lastID = id
        }
    }

    /// Ids reserved in the lock file at once.
    static let idBlock = 1000

    // MARK: Writing

    /// Records a job's current state, without waiting.
    public func save(_ record: JobRecord) {
        let schedule = pending.withLock { pending in
            guard !pending.closed else { return false }
            pending.records[record.id] = record
            if pending.records.count > 2 * limit { Self.dropSurplus(&pending.records, limit: limit) }
            defer { pending.writeScheduled = true }
            return !pending.writeScheduled
        }
        if schedule {
            writer.async(after: Self.coalescing) { [self] in
                guard !pending.withLock({ $0.closed }) else { return }
                _ = writePending()
            }
        }
    }

    /// While writes fail, records pile up: those of finished jobs beyond the newest `limit` would
    /// be pruned once written, so they are dropped instead (live jobs always stay).
    private static func dropSurplus(_ records: inout [Int: JobRecord], limit: Int) {
        // Ids only, each record's state read in place: filtering the records, or iterating over
        // them, copied each (on the event loop, a tenth of a trivial Run's time there when writes
        // lag behind, as they do when the CPUs are busy).
        var finished: [Int] = []
        finished.reserveCapacity(records.count)
        for index in records.indices where records.values[index].state.isFinished { finished.append(records.keys[index]) }
        finished.sort()
        for id in finished.dropLast(limit) { records[id] = nil }
    }

    /// Writes every record saved before this call now, then runs `body` on the writer's queue with
    /// nil, or with why they could not be written.
    public func whenWritten(_ body: @escaping @Sendable (String?) -> Void) {
        writer.urgently { [self] in body(writePending()) }
    }

    /// Writes what is pending, waits for it, and closes the database and the lock. Blocks: call it
    /// once the event loop has stopped.
    public func close() {
        let alreadyClosed = pending.withLock { pending in
            defer { pending.closed = true }
            return pending.closed
        }
        guard !alreadyClosed else { return }
        writer.sync { [self] in
            _ = writePending()
            let unwritten = pending.withLock { $0.records.keys.sorted() }
            if !unwritten.isEmpty {
                logger.error("job history: \(unwritten.count) job records could not be written to \(path) and are lost", metadata: ["jobs": "\(unwritten)"])
            }
            let (database, lock, lastID) = files.withLock { files in
                defer { files.database = nil; files.lock = nil; files.closed = true }
                return (files.database, files.lock, files.lastID)
            }
            // The rest of the reserved block was never handed out: the next daemon continues
            // right after the last id.
            try? lock?.record(lastID: lastID)
            do {
                try database?.close()
            } catch {
                logger.warning("job history: closing \(path): \(error)")
            }
            lock?.release()
        }
        writer.stop()
    }

    /// A pragma's value on the store's own connection (journal_mode and synchronous are per
    /// connection), for tests.
    func pragma(_ name: String) throws -> String? {
        try files.withLock { $0.database }?.read { try String.fetchOne($0, sql: "PRAGMA \(name)") }
    }

    /// On the writer's queue: checks the files (rebuilding them if they are gone), then writes
    /// everything pending in one transaction, and prunes. Nil, or why the records are not written.
    private func writePending() -> String? {
        if let reason = lossReason() { rebuild(because: reason) }
        let batch = pending.withLock { pending in
            defer {
                pending.writing = pending.records
                pending.records = [:]
                pending.writeScheduled = false
            }
            return pending.records
        }
        // `batch` outlives the lock's copy, so that the records are released outside it.
        defer { withExtendedLifetime(batch) { pending.withLock { $0.writing = [:] } } }
        guard !batch.isEmpty else { return health.withLock { $0.problem } }
        let rows = batch.keys.sorted().map { (id: $0, arguments: StoredJob.arguments(batch[$0]!)) }
        do {
            guard let database = files.withLock({ $0.database }) else {
                throw HistoryError(health.withLock { $0.problem } ?? "the job history is not open")
            }
            try database.writeWithoutTransaction { db in
                try db.inTransaction {
                    // Prepared once per connection, not parsed again for every write.
                    let upsert = try db.cachedStatement(sql: HistorySchema.upsert)
                    for row in rows { try upsert.execute(arguments: row.arguments) }
                    try db.cachedStatement(sql: HistorySchema.prune).execute(arguments: [limit])
                    return .commit
                }
            }
            writesWork()
            return nil
        } catch {
            // Kept for the next write (a newer record of the same job replaces it meanwhile).
            let waiting = pending.withLock { pending in
                for row in rows where pending.records[row.id] == nil { pending.records[row.id] = batch[row.id] }
                return pending.records.count
            }
            let reason = switch error {
            case let error as DatabaseError: "\(error.message ?? "\(error.resultCode)") (SQLite \(error.extendedResultCode.rawValue))"
            case let error as HistoryError: error.description
            default: "\(error)"
            }
            let records = waiting == 1 ? "1 job record waits in memory and is written" : "\(waiting) job records wait in memory and are written"
            let problem = "cannot write to \(path): \(reason), with \(FreeSpace.describe(directory)); \(records) once it works again (tried every \(Self.intervalText)); detached runs are refused until then"
            report(problem: problem)
            return problem
        }
    }

    /// A write succeeded: a problem that was reported is over.
    private func writesWork() {
        let over = health.withLock { health -> String? in
            guard let problem = health.problem else { return nil }
            let since = health.problemSince.map(Self.timestamp) ?? "?"
            health.lastIncident = "from \(since) to \(Self.timestamp(Date())): \(problem.prefix { $0 != ";" }); resolved: every record has been written since"
            health.problem = nil
            health.problemSince = nil
            return problem
        }
        guard over != nil else { return }
        logger.notice("job history: writing to \(path) works again; every job record held in memory is written")
        notifyHealthChanged()
    }

    private func report(problem: String) {
        let isNew = health.withLock { health in
            // Up to its first parenthesis a problem says what fails, which is logged once; the rest
            // (the free space, the records waiting) changes from one try to the next.
            let changed = health.problem.map { $0.prefix { $0 != "(" } } != problem.prefix { $0 != "(" }
            if health.problem == nil { health.problemSince = Date() }
            health.problem = problem
            return changed
        }
        if isNew { logger.error("job history: \(problem)") }
        notifyHealthChanged()
    }

    private func notifyHealthChanged() {
        observers.withLock { $0.healthChanged }?()
    }

    // MARK: Checking and rebuilding

    private func scheduleCheck() {
        writer.async(after: Self.checkInterval) { [weak self] in
            guard let self, !pending.withLock({ $0.closed }) else { return }
            let failing = health.withLock { $0.problem != nil }
            if failing || lossReason() != nil || !pending.withLock({ $0.records.isEmpty }) {
                _ = writePending()
            }
            scheduleCheck()
        }
    }

    /// Why the files the history was opened with are no longer those in the state directory; nil
    /// while they are (or the history is waiting to be rebuilt: then "not open").
    private func lossReason() -> String? {
        let (lock, identity, open, closed) = files.withLock { ($0.lock, $0.databaseIdentity, $0.database != nil, $0.closed) }
        guard !closed else { return nil }
        guard open, let lock else { return "the job history is not open" }
        if let reason = lock.lossReason() { return reason }
        switch FileIdentity(path: path) {
        case nil: return "\(path) is gone"
        case let current? where identity != nil && current != identity: return "\(path) was replaced by another file"
        default: return nil
        }
    }

    /// The state directory, its lock or its database went away while the daemon ran: makes them
    /// again and asks for every record the daemon holds. Another daemon that took the directory
    /// meanwhile keeps it: this one reports the conflict and keeps its records in memory.
    private func rebuild(because found: String) {
        let (firstTime, reason) = health.withLock { health in
            let first = health.lostBecause == nil
            if first { health.lostBecause = found }
            return (first, health.lostBecause!)
        }
        if firstTime {
            logger.error("job history: \(reason) while the daemon ran (the state directory \(directory) removed?); recreating the directory, its lock and its database, and writing again every job this daemon holds")
        }
        let (oldDatabase, lastID) = files.withLock { files in
            defer { files.database = nil }
            return (files.database, files.lastID)
        }
        try? oldDatabase?.close()
        do {
            // A lock file still in place is still held (taking it again would conflict with this
            // daemon's own flock); a removed one is taken anew, in a directory made again.
            if files.withLock({ $0.lock?.lossReason() != nil || $0.lock == nil }) {
                let lock = try StateDirectoryLock.acquire(directory: directory, lastID: lastID)
                try files.withLock { (files: inout Files) throws(HistoryError) in
                    files.lock?.release()
                    files.lock = lock
                    // An id handed out while the lock was being taken.
                    try lock.record(lastID: files.lastID)
                    files.recordedID = files.lastID
                }
            }
            // The removed database's journal must not be replayed into the new one.
            if FileIdentity(path: path) == nil { for suffix in ["-wal", "-shm"] { unlink(path + suffix) } }
            let (database, identity) = try Self.openDatabase(path: path)
            try HistorySchema.migrator.migrate(database)
            files.withLock {
                $0.database = database
                $0.databaseIdentity = identity
            }
        } catch {
            let why = (error as? HistoryError)?.description ?? "\(error)"
            report(problem: "\(reason), and the job history cannot be made again: \(why); the jobs stay in memory and are written once it can (tried every \(Self.intervalText)); detached runs are refused until then")
            return
        }
        health.withLock { health in
            health.lastIncident = "\(Self.timestamp(Date())): \(reason); the state directory, its lock and the database were made again and every job this daemon held was written again"
            health.problem = nil
            health.problemSince = nil
            health.lostBecause = nil
        }
        logger.notice("job history: \(path) made again; writing every job this daemon holds")
        observers.withLock { $0.everyRecordNeeded }?()
        notifyHealthChanged()
    }

    // MARK: Status

    /// What `Status` says about the history.
    public var status: HistoryStatus {
        let (problem, incident) = health.withLock { ($0.problem, $0.lastIncident) }
        return HistoryStatus(path: path, problem: problem, lastIncident: incident,
                             unwrittenJobs: pending.withLock { $0.unwrittenCount })
    }

    /// While the history cannot be written: why.
    public var problem: String? { health.withLock { $0.problem } }

    private static var intervalText: String {
        DurationText.format(checkInterval.nanoseconds)
    }

    private static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

/// A file as the kernel knows it (device and inode), to tell whether a path still names it.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}
