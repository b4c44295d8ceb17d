import PoolIPC
import PoolProtocol

/// Which jobs have their lines logged: their start, their end and their workers' info lines, for
/// at most `jobsPerSecond` jobs in any second; the others are counted, to be summed up in one line
/// (`takeSummary`). systemd-journald drops what a service logs above its rate limit (10,000
/// records in 30 s by default, per priority, raised a few times with free disk space), and a pool
/// runs thousands of trivial jobs a second at three lines each: the journal would keep the first
/// of each 30 s and drop every line after them, each costing the daemon a system call all the
/// same, while the history keeps every job.
/// Failures are not counted here: they are always logged. Lives on the event loop.
struct JobLogLimiter {
    /// 0: every job's lines are logged.
    var jobsPerSecond: Int
    private var windowEnd: Int64 = 0
    private var admittedInWindow = 0
    /// Jobs finished without their lines logged since the last summary, by final state.
    private(set) var unlogged: [JobState: Int] = [:]

    init(jobsPerSecond: Int) {
        self.jobsPerSecond = jobsPerSecond
    }

    /// Whether the job starting (or ending without having started) now has its lines logged.
    mutating func admit(now: Int64 = MonotonicClock.nanoseconds) -> Bool {
        guard jobsPerSecond > 0 else { return true }
        if now >= windowEnd {
            windowEnd = now + 1_000_000_000
            admittedInWindow = 0
        }
        guard admittedInWindow < jobsPerSecond else { return false }
        admittedInWindow += 1
        return true
    }

    /// Counts a job that finished unlogged; true for the first since the last summary (time to
    /// schedule the next one).
    mutating func noteUnlogged(_ state: JobState) -> Bool {
        let first = unlogged.isEmpty
        unlogged[state, default: 0] += 1
        return first
    }

    /// The line that sums up the jobs finished unlogged since the last one (a second before, at
    /// most), and their count; nil when there were none.
    mutating func takeSummary() -> (message: String, count: Int)? {
        guard !unlogged.isEmpty else { return nil }
        defer { unlogged = [:] }
        let count = unlogged.values.reduce(0, +)
        let states = unlogged.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
        let jobs = count == 1 ? "1 job" : "\(count) jobs"
        let rate = jobsPerSecond == 1 ? "1 job" : "\(jobsPerSecond) jobs"
        return ("\(jobs) finished in the last second without their lines logged (\(states)): above job-log-rate, "
                + "\(rate) a second, whose lines are logged; failures always are. `poolctl jobs` lists them", count)
    }
}
