import Logging
#if canImport(Glibc)
import Glibc
#endif

/// How the daemon's open-file limit (RLIMIT_NOFILE) is shared out, so that clients can never take
/// the descriptors the pool needs: every connection costs one, and the limiter lets in
/// `maxConnections` served ones plus as many again that are only told TooManyConnections (further
/// ones are closed at once). What is left after the daemon's own descriptors, two per worker (its
/// pidfd and command queue), the reserve kept for respawns and some headroom for jobs and the
/// journal must hold both.
struct DescriptorBudget {
    /// Descriptors a worker costs the daemon: its pidfd and its command queue.
    static let perWorker = 2
    /// For jobs' queues and segments while they are set up, the journal's socket and SQLite.
    static let headroom = 8

    let openFileLimit: Int
    /// Descriptors open now, the reserve (DescriptorReserve) included.
    let openNow: Int
    let workers: Int

    /// The most connections the limit allows (at least 1: the daemon must stay reachable).
    var maxConnections: Int {
        // +1: the listening socket, bound after this is worked out.
        let spare = openFileLimit - openNow - 1 - workers * Self.perWorker - Self.headroom
        return max(1, spare / 2)
    }

    /// Raises the soft limit to the hard one, as systemd's own daemons do: the connection limits,
    /// not an accident of the environment (1024 under systemd), should decide how many clients are
    /// served. The daemon uses epoll, never select(2), so descriptors above 1024 are fine. Returns
    /// the soft limit in force (and the hard one).
    static func raiseOpenFileLimit() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (Int.max, Int.max) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if withUnsafePointer(to: raised, { setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), $0) }) == 0 { limit = raised }
        }
        // RLIM_INFINITY is the largest rlim_t.
        func clamp(_ value: rlim_t) -> Int { value > rlim_t(Int.max) ? Int.max : Int(value) }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Descriptors this process has open (the entries of /proc/self/fd, less the one listing them).
    static func openDescriptorCount() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return count - 1
    }

    /// Lowers the connection limits to what the open-file limit holds, saying so.
    static func fit(_ settings: inout ControlSocketSettings, workers: Int, logger: Logger) {
        let (soft, hard) = raiseOpenFileLimit()
        guard soft != Int.max else { return }
        let budget = DescriptorBudget(openFileLimit: soft, openNow: openDescriptorCount(), workers: workers)
        let allowed = budget.maxConnections
        logger.debug("descriptor budget", metadata: ["openFileLimit": "\(soft)", "hardLimit": "\(hard)", "openNow": "\(budget.openNow)",
                                                     "maxConnections": "\(allowed)"])
        guard settings.maxConnections > allowed else { return }
        logger.notice("lowering --max-connections from \(settings.maxConnections) to \(allowed): the open-file limit (RLIMIT_NOFILE) is \(soft) (hard limit \(hard)) and the daemon keeps \(budget.openNow + 1 + workers * perWorker + headroom) for itself and its \(workers) workers; each connection needs one, and as many again are kept to refuse clients over the limit with a reason. Raise LimitNOFILE= in the unit (or `ulimit -n`) for more.")
        settings.maxConnections = allowed
        settings.maxConnectionsPerUID = min(settings.maxConnectionsPerUID, allowed)
    }
}
