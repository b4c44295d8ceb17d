import NIOCore

/// Where an orderly stop stands (see PoolController+Shutdown).
struct DrainState {
    /// What asked for the stop (SIGTERM, SIGINT, Shutdown); nil while the daemon runs.
    var reason: String?
    /// CLOCK_MONOTONIC nanoseconds at which running jobs are cancelled.
    var deadline: Int64 = 0
    /// Set once running jobs were told to stop (the deadline came, or a second stop request).
    var deadlinePassed = false
    var deadlineTimer: Scheduled<Void>?
    /// Refreshes STATUS= (its countdown) while jobs drain.
    var statusTimer: Scheduled<Void>?
}
