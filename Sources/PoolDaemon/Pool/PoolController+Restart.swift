import Logging
import PoolProtocol

/// Where a `RestartWorkers` stands: the slots still to replace, the one whose new worker is
/// awaited, and the callers waiting for the end.
struct RestartState {
    var pending: [Int] = []
    var current: Int?
    var restarted: [Int] = []
    var afterJob: [Int] = []
    var replies: [(Result<RestartWorkersReply, PoolError>) -> Void] = []
}

/// `RestartWorkers` (`poolctl pool restart [SLOT...]`): new workers without restarting the daemon.
/// One slot at a time, so the pool never loses more than one worker's capacity: an idle worker is
/// asked to exit and its slot respawned, and the next slot waits until the new worker is ready (or
/// its slot has failed). A failed slot is given a fresh failure window and spawned again. A busy
/// slot is marked and its worker replaced when its job ends; the reply does not wait for those.
extension PoolController {
    func restartWorkers(slots requested: [Int]?, reply: @escaping (Result<RestartWorkersReply, PoolError>) -> Void) throws(PoolError) {
        let serving = slotTable.indices.filter { slotTable[$0]?.retiring == false }
        let chosen = requested ?? serving
        guard !chosen.isEmpty else { throw PoolError.invalidParameter("slots", "must name at least one slot (or be left out: every slot)") }
        for index in chosen where !serving.contains(index) {
            throw PoolError.invalidParameter("slots", "there is no slot \(index); the pool's slots are 0 to \(slotTable.targetSize - 1)")
        }
        for index in chosen where restart.current != index && !restart.pending.contains(index) {
            restart.pending.append(index)
        }
        restart.replies.append(reply)
        logger.info("replacing workers", metadata: ["slots": "\(chosen)"])
        advanceRestart()
    }

    /// Moves the restart on once the slot being replaced has settled. Called whenever a slot may
    /// have: a worker said ready, a process exited, a spawn was tried, a slot was removed.
    func advanceRestart() {
        guard !restart.replies.isEmpty else { return }
        guard lifecycle.isRunning else {
            let replies = restart.replies
            restart = RestartState()
            for reply in replies { reply(.failure(.shuttingDown("the daemon began to shut down while replacing workers"))) }
            return
        }
        if let current = restart.current {
            guard restartSettled(current) else { return }
            restart.current = nil
        }
        while restart.current == nil, !restart.pending.isEmpty {
            let index = restart.pending.removeFirst()
            guard let slot = slotTable[index], !slot.retiring else { continue }
            switch slot.state {
            case .busy:
                slotTable.update(index) { $0.replaceAfterJob = true }
                restart.afterJob.append(index)
            case .failed:
                logger.notice("bringing a failed slot back", metadata: ["slot": "\(index)"])
                slotTable.update(index) { $0.crashTimes = [] }
                beginReplacing(index)
                spawnWorker(slot: index)
            case .ready:
                beginReplacing(index)
                stopWorker(slot: index)
            case .starting, .backoff, .stopping:
                // A new worker is on its way already: wait for it like for any other.
                beginReplacing(index)
            }
            if let current = restart.current, restartSettled(current) { restart.current = nil }
        }
        guard restart.current == nil, restart.pending.isEmpty else { return }
        let done = restart
        restart = RestartState()
        let reply = RestartWorkersReply(poolSize: slotTable.targetSize, workers: slotTable.info, restarted: done.restarted, afterJob: done.afterJob)
        logger.info("workers replaced", metadata: ["restarted": "\(done.restarted)", "afterJob": "\(done.afterJob)"])
        for caller in done.replies { caller(.success(reply)) }
    }

    /// Set before the slot's worker is stopped or spawned, so that the calls back into
    /// `advanceRestart` they make wait for this slot.
    private func beginReplacing(_ index: Int) {
        restart.current = index
        restart.restarted.append(index)
    }

    /// Whether the slot's replacement is over: its new worker is up, or the slot failed or went.
    private func restartSettled(_ index: Int) -> Bool {
        guard let slot = slotTable[index], !slot.retiring else { return true }
        switch slot.state {
        case .ready, .busy, .failed: return true
        case .starting, .backoff, .stopping: return false
        }
    }
}
