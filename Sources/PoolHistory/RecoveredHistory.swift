import PoolProtocol

/// What the history held when the daemon started, after marking jobs the previous run left
/// unfinished as `interrupted` and pruning beyond the limit.
public struct RecoveredHistory: Sendable {
    /// The jobs kept, newest first.
    public var records: [JobRecord]
    /// The highest job id handed out (stored, or recorded in the lock file); new ids continue after
    /// it, so none repeats across restarts.
    public var highestID: Int
    /// Jobs that were queued or running when the previous daemon stopped, now `interrupted`.
    public var interrupted: [Int]
    /// Rows that could not be read (left in the file, not listed), with the reason.
    public var unreadable: [String]
    /// Ids of rows moved to the table `job_set_aside`: ids no poold hands out.
    public var setAside: [Int] = []

    public init(records: [JobRecord] = [], highestID: Int = 0, interrupted: [Int] = [], unreadable: [String] = []) {
        self.records = records
        self.highestID = highestID
        self.interrupted = interrupted
        self.unreadable = unreadable
    }
}
