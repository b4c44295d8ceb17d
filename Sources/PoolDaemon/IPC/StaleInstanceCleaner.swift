import Logging
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// Removes what dead poold instances left behind. A daemon killed with SIGKILL (or crashing, or
/// losing power in a container that keeps /dev/shm) cannot unlink its queues and segments; the
/// next daemon to start does it for it, and touches nothing else.
///
/// Dead or alive is decided by the scoreboard's lock (see `Scoreboard`): its creator holds an
/// exclusive flock for as long as it lives, and stamps the header only once it holds it. So a
/// scoreboard whose lock can be taken and whose header is stamped belongs to a dead instance; one
/// whose lock is held belongs to a live one; and one without a stamp is either being created this
/// instant or was made by an older poold that took no lock: it is left alone. Every instance
/// creates its scoreboard before any other object and unlinks it after all of them, so an
/// instance's objects are exactly those named `<prefix>.` + anything (less those of a longer
/// prefix that has a scoreboard of its own).
enum StaleInstanceCleaner {
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// A scoreboard without a header younger than this may be a new instance in the instant
    /// between creating it and taking its lock.
    static let creationGraceSeconds = 5.0
    /// How long to wait for the lock of a scoreboard with our prefix that another instance holds
    /// while it removes a dead one (milliseconds, normally).
    static let lockWaitNanos: Int64 = 2_000_000_000

    /// Creates this instance's scoreboard, which claims `names.prefix` for it. A dead instance
    /// that had the same prefix (an explicit `--ipc-prefix` reused, or a recycled pid) is removed
    /// first; a live one makes this fail with a reason. Any other object carrying the prefix is
    /// then a leftover and is removed too, so that creating the queues cannot meet EEXIST.
    static func claim(names: IPCNames, capacity: Int, logger: Logger) throws(Refusal) -> Scoreboard {
        var attempts = 0
        while true {
            attempts += 1
            do {
                let scoreboard = try Scoreboard.create(name: names.scoreboard, capacity: capacity)
                removeLeftovers(of: names, slots: capacity, logger: logger)
                return scoreboard
            } catch {
                // More than a couple of rounds means someone keeps recreating it: give up.
                guard error.errno == EEXIST, attempts < 4 else {
                    throw Refusal(description: "cannot create the pool's scoreboard: \(error)")
                }
            }
            try removeDeadOwner(of: names, logger: logger)
        }
    }

    /// Removes the objects of every dead instance other than `own`.
    static func removeDeadInstances(except own: String, logger: Logger) {
        let listing = IPCObjectListing.current()
        let prefixes = IPCObjectListing.scoreboardPrefixes()
        for prefix in prefixes where prefix != own {
            let names = IPCNames(prefix: prefix)
            // Not openable: gone meanwhile, or another user's (their objects are not ours to remove).
            guard let probe = ScoreboardProbe(name: names.scoreboard) else { continue }
            guard probe.tryLock() else { continue }  // live
            guard probe.isLinked else { continue }  // removed by whoever held the lock before
            if let header = probe.header {
                remove(names, probe: probe, pid: header.pid, listing: listing, prefixes: prefixes, logger: logger)
            } else if let reason = headerlessOwnerMayLive(probe) {
                logger.debug("left alone: a scoreboard without a poold header (\(reason))", metadata: ["scoreboard": "\(names.scoreboard)"])
            } else {
                remove(names, probe: probe, pid: nil, listing: listing, prefixes: prefixes, logger: logger)
            }
        }
    }

    /// The scoreboard with our prefix exists: remove it if its instance is dead, or say who has it.
    private static func removeDeadOwner(of names: IPCNames, logger: Logger) throws(Refusal) {
        guard let probe = ScoreboardProbe(name: names.scoreboard) else { return }  // gone: try again
        let deadline = MonotonicClock.nanoseconds + lockWaitNanos
        while !probe.tryLock() {
            if let header = probe.header, ProcessLiveness.isRunning(header.pid) {
                throw Refusal(description: "another poold (pid \(header.pid)) uses the IPC prefix \(names.prefix); stop it first or choose another --ipc-prefix")
            }
            // Held, but not by a running owner: another instance is removing the dead owner's
            // objects, which takes milliseconds. (Or the owner is in another pid namespace and
            // shares this /dev/shm: then it keeps the lock, and the wait below ends in a refusal.)
            guard MonotonicClock.nanoseconds < deadline else {
                throw Refusal(description: "another process holds the lock of \(names.scoreboard) (the IPC prefix \(names.prefix)); choose another --ipc-prefix")
            }
            usleep(10_000)
        }
        guard probe.isLinked else { return }  // removed by the previous holder: try again
        if let header = probe.header {
            remove(names, probe: probe, pid: header.pid, listing: .current(), prefixes: IPCObjectListing.scoreboardPrefixes(), logger: logger)
            return
        }
        if let reason = headerlessOwnerMayLive(probe) {
            throw Refusal(description: "the IPC prefix \(names.prefix) is in use: \(reason); stop it first or choose another --ipc-prefix")
        }
        remove(names, probe: probe, pid: nil, listing: .current(), prefixes: IPCObjectListing.scoreboardPrefixes(), logger: logger)
    }

    /// A scoreboard without a header whose lock the caller holds: a poold that died before
    /// stamping it (even before sizing it), an older poold (which took no lock), or one creating it
    /// this instant. Only the first may go; an older live poold shows itself by its running
    /// workers. Nil when it is dead, else why it may not be.
    private static func headerlessOwnerMayLive(_ probe: ScoreboardProbe) -> String? {
        if let worker = probe.workerPIDs.first(where: ProcessLiveness.isRunning) {
            return "a poold whose worker (pid \(worker)) still runs"
        }
        guard probe.ageSeconds > creationGraceSeconds else {
            return "another poold is creating it (its scoreboard is \(Int(probe.ageSeconds * 1000)) ms old)"
        }
        return nil
    }

    /// Unlinks a dead instance's objects, the scoreboard last and under its lock.
    private static func remove(_ names: IPCNames, probe: ScoreboardProbe, pid: Int32?, listing: IPCObjectListing,
                               prefixes: [String], logger: Logger) {
        let owned = listing.objects(of: names.prefix, among: prefixes)
        var removed: [String] = []
        let segments = owned.sharedMemory.filter { $0 != names.scoreboard }
        for name in segments where SharedSegment.unlink(name: name) { removed.append(name) }
        if listing.queues != nil {
            for name in owned.queues where MessageQueue.unlink(name: name) { removed.append(name) }
        } else {
            let jobs = Set(probe.jobIDs + segments.compactMap { jobID(of: $0, prefix: names.prefix) })
            for name in unlistableQueueNames(names, slots: probe.slotCount, jobs: jobs) where MessageQueue.unlink(name: name) {
                removed.append(name)
            }
        }
        if SharedSegment.unlink(name: names.scoreboard) { removed.append(names.scoreboard) }
        probe.close()
        logger.notice("removed the IPC objects of a dead poold instance",
                      metadata: ["ipcPrefix": "\(names.prefix)", "deadPid": "\(pid.map(String.init) ?? "unknown")",
                                 "count": "\(removed.count)", "objects": "\(removed.joined(separator: " "))",
                                 MessageID.key: MessageID.staleIPCRemoved])
    }

    /// Right after claiming the prefix: whatever else carries it is left over from an earlier
    /// instance (whose scoreboard is already gone).
    private static func removeLeftovers(of names: IPCNames, slots: Int, logger: Logger) {
        let listing = IPCObjectListing.current()
        let owned = listing.objects(of: names.prefix, among: IPCObjectListing.scoreboardPrefixes())
        var removed: [String] = []
        for name in owned.sharedMemory where name != names.scoreboard && SharedSegment.unlink(name: name) { removed.append(name) }
        let queues = listing.queues != nil ? owned.queues : unlistableQueueNames(names, slots: slots, jobs: [])
        for name in queues where MessageQueue.unlink(name: name) { removed.append(name) }
        guard !removed.isEmpty else { return }
        logger.notice("removed IPC objects left over by an earlier instance with this prefix",
                      metadata: ["ipcPrefix": "\(names.prefix)", "count": "\(removed.count)",
                                 "objects": "\(removed.joined(separator: " "))", MessageID.key: MessageID.staleIPCRemoved])
    }

    /// The queues an instance can have had, for when /dev/mqueue is not mounted (a container, a
    /// sandbox with its own /dev) and queues cannot be listed: its event queue, a command queue per
    /// slot of its scoreboard, and the queue of each job it was running or had a segment for. (A
    /// job's queue is named after its segment, which may be one reused from an earlier job and
    /// named after that one: the segments, which can always be listed, name it. Segments kept free
    /// for reuse carry the prefix like any other object and are removed with them.)
    private static func unlistableQueueNames(_ names: IPCNames, slots: Int, jobs: Set<Int>) -> [String] {
        [names.events] + (0..<slots).map(names.commands(slot:))
            + jobs.sorted().map { ProdConsJob.queueName(segmentName: names.job($0)) }
    }

    /// `<prefix>.job12` or `<prefix>.job12.<anything>`: 12.
    private static func jobID(of name: String, prefix: String) -> Int? {
        let marker = prefix + ".job"
        guard name.hasPrefix(marker) else { return nil }
        return Int(name.dropFirst(marker.count).prefix { $0.isNumber })
    }
}
