import Logging
import NIOCore
import PoolIPC
import PoolProtocol

/// The lifecycle's events and the actions its transitions return (see `Lifecycle`).
extension PoolController {
    /// SIGTERM, SIGINT, the Shutdown call.
    func requestStop(reason: String) {
        perform(lifecycle.transition(on: .stopRequested(reason: reason, now: eventLoop.monotonicNanoseconds,
                                                         drainTimeout: configuration.drainTimeout, runningJobs: scheduler.running.count)))
    }

    /// Sends `READY=1` (via `onReady`) once no initial worker is still starting.
    func checkReady() {
        guard lifecycle.isStarting, !slotTable.anyStarting else { return }
        perform(lifecycle.transition(on: .workersUp))
    }

    /// Completes the shutdown once no worker process is left.
    func finishStopIfIdle() {
        // A slot backing off before it respawns for a takeover still has work to do.
        guard lifecycle.isDraining, !slotTable.anyProcessOrBackoff else { return }
        perform(lifecycle.transition(on: .workersGone))
    }

    private func perform(_ actions: [Lifecycle.Action]) {
        for action in actions {
            switch action {
            case .announceReady:
                onReady?()
                onReady = nil
                dispatchJobs()  // jobs submitted while the pool was starting
            case .beginDrain(let drain):
                beginDrain(drain)
            case .scheduleDrainDeadline(let timeout):
                drainDeadlineTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(timeout)) { [self] in
                    drainDeadlineTimer = nil
                    perform(lifecycle.transition(on: .drainDeadlineReached))
                }
                scheduleDrainStatus()
            case .cancelRunningJobs(let reason):
                cancelRunningJobs(because: reason)
            case .cutDrainShort(let askedBy, let reason):
                logger.notice("asked again to stop (\(askedBy)); cancelling the running jobs now")
                cancelRunningJobs(because: reason)
            case .finishStop:
                finishStop()
            }
        }
        guard actions.contains(where: { if case .beginDrain = $0 { true } else { false } }) else { return }
        noteChange()
        advanceRestart()  // a restart in progress stops here
        finishStopIfIdle()
    }

    /// The drain begins: queued jobs are cancelled, idle workers asked to exit; busy ones exit
    /// once their part of a job has ended.
    private func beginDrain(_ drain: Lifecycle.Drain) {
        notifier.notify("STOPPING=1")
        extendStopTimeout(drainLeft: nanoseconds(drain.timeout))
        let running = scheduler.running.count
        let timeout = DurationText.format(nanoseconds(drain.timeout))
        let plan = running == 0 ? "no job is running" : drain.timeout == .zero ? "cancelling \(running) running job(s) now (--drain-timeout 0)"
            : "\(running) running job(s) may finish within \(timeout)"
        let queued = scheduler.queue.isEmpty ? "" : "; cancelling \(scheduler.queue.count) queued job(s)"
        logger.info("shutting down (\(drain.reason)): \(plan)\(queued)",
                    metadata: ["reason": "\(drain.reason)", "runningJobs": "\(running)", "queuedJobs": "\(scheduler.queue.count)",
                               "drainTimeout": "\(timeout)"])
        for id in scheduler.queue {
            if let job = scheduler.jobs[id] { cancel(job, reason: "the daemon is shutting down (\(drain.reason)); the job had not started") }
        }
        for index in slotTable.indices {
            guard let slot = slotTable[index] else { continue }
            switch slot.state {
            case .busy: break  // stops when its part of the job has ended
            case _ where slot.takeover != nil: break  // respawning to finish a dead worker's part
            case .stopping where slot.process != nil: break
            default: stopWorker(slot: index)
            }
        }
    }

    /// The drain is over: every running job is cancelled (and its workers then stop).
    private func cancelRunningJobs(because reason: String) {
        drainDeadlineTimer?.cancel()
        drainDeadlineTimer = nil
        extendStopTimeout(drainLeft: 0)
        let running = scheduler.running.sorted().compactMap { scheduler.jobs[$0] }
        if !running.isEmpty {
            logger.notice("cancelling the jobs still running: \(running.map { "job \($0.id) (\($0.plan.kind.name))" }.joined(separator: ", "))",
                          metadata: ["jobs": "\(running.map(\.id))"])
        }
        for job in running { cancel(job, reason: reason) }
        noteChange()
    }

    /// Keeps STATUS= counting down while jobs drain.
    private func scheduleDrainStatus() {
        drainStatusTimer = eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            drainStatusTimer = nil
            guard lifecycle.isDraining, lifecycle.drain?.deadlinePassed == false else { return }
            extendStopTimeout(drainLeft: lifecycle.drainLeft(now: eventLoop.monotonicNanoseconds))
            noteChange()
            scheduleDrainStatus()
        }
    }

    /// Tells systemd how long the rest of the stop may take (EXTEND_TIMEOUT_USEC), so that the
    /// unit's TimeoutStopSec= need not know `drain-timeout`: what is left of the drain, then a
    /// cancelled job's grace, then a worker's stop timeout, plus a second for the last
    /// notifications. Sent at the start, every second of the drain and at its deadline; each
    /// message covers the time until the next one with room to spare.
    private func extendStopTimeout(drainLeft: Int64) {
        let rest = drainLeft + nanoseconds(configuration.cancelGrace) + nanoseconds(configuration.stopTimeout) + 1_000_000_000
        notifier.notify("EXTEND_TIMEOUT_USEC=\(rest / 1000)")
    }

    private func finishStop() {
        drainDeadlineTimer?.cancel()
        drainStatusTimer?.cancel()
        slotTable.close()
        removeIPCObjects()
        watcher?.stop()
        scheduler.logUnloggedSummary()
        logger.info("all workers stopped; IPC objects removed")
        onStopped?()
        onStopped = nil
    }

    /// Unlinks everything this instance created. Jobs' segments are unlinked as they finish or
    /// kept for reuse, and those kept go now; this also sweeps up whatever a failed start left. The
    /// scoreboard goes last: until then, its lock (held until the process exits) tells other
    /// instances that these objects are not stale.
    func removeIPCObjects() {
        let names = configuration.names
        slotTable.removeCommandQueues(capacity: configuration.maxWorkers)
        scheduler.segments.removeAll()
        for id in scheduler.jobs.keys { SharedSegment.unlink(name: names.job(id)) }
        events.close()
        MessageQueue.unlink(name: names.events)
        SharedSegment.unlink(name: names.scoreboard)
    }

    // MARK: What clients and systemd see

    /// STATUS= while the daemon stops.
    func stoppingStatusLine(_ status: StatusReply) -> String? {
        lifecycle.stoppingStatusLine(status, now: eventLoop.monotonicNanoseconds)
    }

    /// Why `Run` is refused during a shutdown.
    var shutdownRefusal: String {
        lifecycle.shutdownRefusal(runningJobs: scheduler.running.count, now: eventLoop.monotonicNanoseconds)
    }
}
