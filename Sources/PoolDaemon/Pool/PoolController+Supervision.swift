import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The slots' events and what follows from them across the pool: a worker ready takes a job or a
/// takeover, a worker's exit ends its part of a job and then respawns, fails or removes its slot.
extension PoolController {
    /// Starts a worker in the slot (see `SlotTable.launch`); a failure counts as a crash.
    func spawnWorker(slot index: Int) {
        switch slotTable.launch(index, startTimeout: configuration.startTimeout) {
        case nil: return
        case .success(let process)?: watcher?.watch(pidfd: process.pidfd)
        case .failure?: crashed(slot: index)
        }
        noteChange()
        advanceRestart()
    }

    func workerSaidReady(slot index: Int, pid: Int32) {
        guard slotTable.markReady(index, pid: pid), let slot = slotTable[index] else { return }
        if slot.takeover != nil, !slot.retiring {
            takeOver(slot: index)
        } else if slot.retiring || lifecycle.isDraining {
            stopWorker(slot: index)
        } else {
            dispatchJobs()
        }
        checkReady()
        noteChange()
        advanceRestart()
    }

    /// Asks a worker to exit, and kills it if it has not within the stop timeout.
    func stopWorker(slot index: Int) {
        abandonTakeover(slot: index, reason: "the slot is being stopped")
        guard slotTable[index] != nil else { return }
        guard slotTable.askToExit(index, timeout: configuration.stopTimeout) else {
            // Nothing runs here (backoff or failed): the slot is done at once.
            return processGone(slot: index)
        }
        noteChange()
    }

    /// A worker process has exited: its part of a job ends (or goes to a replacement), then its
    /// slot is done, fails, or respawns after a backoff.
    func workerExited(pidfd: Int32) {
        guard let exit = slotTable.processExited(pidfd: pidfd) else { return }
        let index = exit.slot
        if let job = exit.job {
            let replaceable = !exit.wasStopping && !exit.refusedToRun && acceptsReplacements && !exit.wasRetiring
            participantDied(slot: index, pid: exit.pid, jobID: job, exit: exit.description, replaceable: replaceable)
        }
        if exit.wasStopping {
            logger.debug("worker exited", metadata: ["slot": "\(index)", "pid": "\(exit.pid)", "exit": "\(exit.status?.description ?? exit.description)"])
            processGone(slot: index)
        } else if exit.refusedToRun {
            logger.error("worker in slot \(index) (pid \(exit.pid)) exited with status \(WorkerRuntime.exitDoNotRespawn), which means do not respawn; slot \(index) failed (`poolctl pool restart \(index)` brings it back)",
                         metadata: ["slot": "\(index)", "pid": "\(exit.pid)", MessageID.key: MessageID.slotFailed])
            slotTable.update(index) { $0.state = .failed }
            abandonTakeover(slot: index, reason: "the slot failed: its worker cannot run here")
            failQueuedJobsThatCannotRun()
        } else {
            crashed(slot: index, death: (message: "worker in slot \(index) (pid \(exit.pid)) died: \(exit.description)",
                                         metadata: ["pid": "\(exit.pid)", "exit": "\(exit.description)"]))
        }
        // A slot that failed while the daemon drains may have been the last one with a process.
        finishStopIfIdle()
        checkReady()
        noteChange()
        dispatchJobs()
        advanceRestart()
    }

    /// A worker died unexpectedly (or could not be started): respawn after a backoff, or give the
    /// slot up when it crashed too often within the window. `death`, when a process died, is
    /// logged in one record with what follows from it ("...; respawning in 200ms").
    func crashed(slot index: Int, death: (message: String, metadata: Logger.Metadata)? = nil) {
        func logDeath(_ consequence: String, _ extra: Logger.Metadata = [:]) {
            guard let death else { return }
            let metadata = death.metadata.merging(extra) { $1 }.merging(["slot": "\(index)", MessageID.key: MessageID.workerDied]) { $1 }
            logger.error("\(death.message); \(consequence)", metadata: metadata)
        }
        guard let slot = slotTable[index] else { return }
        // While draining, a slot is respawned only to finish a dead worker's part of a job.
        if slot.retiring || (lifecycle.isDraining && slot.takeover == nil) {
            logDeath("not respawning: the slot is being stopped")
            abandonTakeover(slot: index, reason: "the slot is being stopped")
            slotTable.update(index) { $0.state = .stopping }
            processGone(slot: index)
            return
        }
        let verdict = slotTable.recordCrash(index, now: eventLoop.monotonicNanoseconds, policy: configuration.crashPolicy) { [self] in
            backoffEnded(slot: index)
        }
        let window = DurationText.format(nanoseconds(configuration.failureWindow))
        switch verdict {
        case .giveUp(let crashes)?:
            abandonTakeover(slot: index, reason: "the slot failed after \(crashes) crashes within \(configuration.failureWindow)")
            logDeath("not respawning")
            logger.error("slot \(index) failed: \(crashes) crashes within \(window); `poolctl pool restart \(index)` brings it back",
                         metadata: ["slot": "\(index)", MessageID.key: MessageID.slotFailed])
            failQueuedJobsThatCannotRun()
        case .respawn(let delay, let crashes)?:
            let backoff = "respawning in \(delay / 1_000_000)ms (crash \(crashes) within \(window); the slot fails at \(configuration.failureLimit))"
            if death != nil {
                logDeath(backoff, ["delayMillis": "\(delay / 1_000_000)"])
            } else {
                logger.info("slot \(index): \(backoff)", metadata: ["slot": "\(index)", "delayMillis": "\(delay / 1_000_000)"])
            }
        case nil:
            return
        }
    }

    /// A slot's backoff is over: respawn its worker, unless the daemon drains and no takeover
    /// needs the slot any more.
    private func backoffEnded(slot index: Int) {
        guard !lifecycle.isDraining || slotTable[index]?.takeover != nil else { return stopBackedOffSlot(index) }
        let restarts = slotTable.update(index) { slot in
            slot.restarts += 1
            return slot.restarts
        } ?? 0
        logger.info("respawning the worker in slot \(index) (restart \(restarts))",
                    metadata: ["slot": "\(index)", "restarts": "\(restarts)", MessageID.key: MessageID.workerRespawned])
        spawnWorker(slot: index)
    }

    /// Whether a worker that dies in a job is replaced to finish its part: while the pool runs, and
    /// while it drains (until the deadline), since the drain exists to let running jobs complete.
    var acceptsReplacements: Bool {
        lifecycle.acceptsReplacements
    }

    /// A slot waiting to respawn during the drain whose takeover went away (its job ended): it
    /// stays down.
    func stopBackedOffSlot(_ index: Int) {
        guard slotTable.cancelBackoff(index) else { return }
        processGone(slot: index)
    }

    /// A stopping slot has no process any more: remove it if the pool shrank, respawn it if it was
    /// brought back meanwhile, or leave it stopped while the daemon shuts down.
    func processGone(slot index: Int) {
        guard let slot = slotTable[index] else { return }
        slotTable.removeCommandQueue(index)
        if lifecycle.isDraining || lifecycle.isStopped {
            finishStopIfIdle()
        } else if slot.retiring {
            slotTable.remove(index)
            logger.info("slot \(index) removed: the pool shrank", metadata: ["slot": "\(index)"])
            advanceRestart()
        } else {
            spawnWorker(slot: index)
        }
        noteChange()
    }

    /// Grows or shrinks the pool. New slots start at once; surplus idle workers are asked to exit,
    /// busy ones exit when their job is done. Asking for the current size again retries failed slots.
    func resize(to size: Int) {
        slotTable.targetSize = size
        for index in 0..<size {
            if let slot = slotTable[index] {
                slotTable.update(index) { slot in
                    slot.retiring = false
                    if slot.state == .failed { slot.crashTimes = [] }
                }
                if slot.state == .failed { spawnWorker(slot: index) }
            } else {
                slotTable.add(index)
                spawnWorker(slot: index)
            }
        }
        for index in slotTable.indices where index >= size {
            guard let slot = slotTable[index], !slot.retiring else { continue }
            slotTable.update(index) { $0.retiring = true }
            switch slot.state {
            case .ready, .starting, .backoff, .failed: stopWorker(slot: index)
            case .busy, .stopping: break
            }
        }
        logger.info("pool resized to \(JobScheduler.workers(size))", metadata: ["workers": "\(size)"])
        failQueuedJobsThatCannotRun()
        noteChange()
        dispatchJobs()
    }
}

func timeAmount(_ duration: Duration) -> TimeAmount {
    .nanoseconds(nanoseconds(duration))
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}
