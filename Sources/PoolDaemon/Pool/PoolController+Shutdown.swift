import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// An orderly stop (SIGTERM, SIGINT, the Shutdown call), in two phases.
///
/// Draining: `Run` is refused with ShuttingDown, queued jobs are cancelled at once, idle workers are
/// asked to exit, and running jobs may go on until the drain deadline (`--drain-timeout`). Then
/// they are cancelled the usual way (the cancel flag, `cancelGrace` to notice it, then SIGKILL) and
/// end `cancelled`, their result the exact account of what they did. A busy worker exits as soon
/// as its part of a job has ended. A second SIGTERM or SIGINT (Ctrl-C twice) or Shutdown cuts the
/// drain short.
///
/// Stopping: once no worker process is left, every IPC object is unlinked and `onStopped` runs.
extension PoolController {
    func beginShutdown(reason: String) {
        if lifecycle == .draining {
            guard !drain.deadlinePassed else { return }
            logger.notice("asked again to stop (\(reason)); cancelling the running jobs now")
            cancelRunningJobs(because: "the daemon is shutting down (\(drain.reason ?? reason)) and was asked again to stop")
            return
        }
        guard lifecycle == .running || lifecycle == .starting else { return }
        lifecycle = .draining
        notifier.notify("STOPPING=1")
        let timeout = configuration.drainTimeout
        drain.reason = reason
        drain.deadline = MonotonicClock.nanoseconds + nanoseconds(timeout)
        extendStopTimeout()
        let running = runningJobIDs.count
        let plan = running == 0 ? "no job is running" : timeout == .zero ? "cancelling \(running) running job(s) now (--drain-timeout 0)"
            : "\(running) running job(s) may finish within \(DurationText.format(nanoseconds(timeout)))"
        let queued = queue.isEmpty ? "" : "; cancelling \(queue.count) queued job(s)"
        logger.info("shutting down (\(reason)): \(plan)\(queued)",
                    metadata: ["reason": "\(reason)", "runningJobs": "\(running)", "queuedJobs": "\(queue.count)",
                                                "drainTimeout": "\(DurationText.format(nanoseconds(timeout)))"])
        for id in queue {
            if let job = jobs[id] { cancel(job, reason: "the daemon is shutting down (\(reason)); the job had not started") }
        }
        for index in slots.keys.sorted() {
            guard let slot = slots[index] else { continue }
            switch slot.state {
            case .busy: break  // stops when its part of the job has ended
            case _ where slot.takeover != nil: break  // respawning to finish a dead worker's part
            case .stopping where slot.process != nil: break
            default: stopWorker(slot: index)
            }
        }
        if running == 0 {
            drain.deadlinePassed = true  // nothing to drain
        } else if timeout == .zero {
            cancelRunningJobs(because: "the daemon is shutting down (\(reason)) with no drain time (--drain-timeout 0)")
        } else {
            drain.deadlineTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(timeout)) { [self] in
                drain.deadlineTimer = nil
                cancelRunningJobs(because: "the daemon is shutting down (\(reason)) and the job was still running at the drain deadline (\(DurationText.format(nanoseconds(timeout))))")
            }
            scheduleDrainStatus()
        }
        noteChange()
        advanceRestart()  // a restart in progress stops here
        finishShutdownIfIdle()
    }

    /// The drain is over: every running job is cancelled (and its workers then stop).
    private func cancelRunningJobs(because reason: String) {
        drain.deadlinePassed = true
        drain.deadlineTimer?.cancel()
        drain.deadlineTimer = nil
        extendStopTimeout()
        let running = runningJobIDs.sorted().compactMap { jobs[$0] }
        if !running.isEmpty {
            logger.notice("cancelling the jobs still running: \(running.map { "job \($0.id) (\($0.plan.kind.name))" }.joined(separator: ", "))",
                          metadata: ["jobs": "\(running.map(\.id))"])
        }
        for job in running { cancel(job, reason: reason) }
        noteChange()
    }

    /// Keeps STATUS= counting down while jobs drain.
    private func scheduleDrainStatus() {
        drain.statusTimer = eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            drain.statusTimer = nil
            guard lifecycle == .draining, !drain.deadlinePassed else { return }
            extendStopTimeout()
            noteChange()
            scheduleDrainStatus()
        }
    }

    /// Tells systemd how long the rest of the stop may take (EXTEND_TIMEOUT_USEC), so that the
    /// unit's TimeoutStopSec= need not know `drain-timeout`: what is left of the drain, then a
    /// cancelled job's grace, then a worker's stop timeout, plus a second for the last
    /// notifications. Sent at the start, every second of the drain and at its deadline; each
    /// message covers the time until the next one with room to spare.
    private func extendStopTimeout() {
        let drainLeft = drain.deadlinePassed ? 0 : max(0, drain.deadline - MonotonicClock.nanoseconds)
        let rest = drainLeft + nanoseconds(configuration.cancelGrace) + nanoseconds(configuration.stopTimeout) + 1_000_000_000
        notifier.notify("EXTEND_TIMEOUT_USEC=\(rest / 1000)")
    }

    /// Completes the shutdown once no worker process is left.
    func finishShutdownIfIdle() {
        // A slot backing off before it respawns for a takeover still has work to do.
        guard lifecycle == .draining, !slots.values.contains(where: { $0.process != nil || $0.state == .backoff }) else { return }
        lifecycle = .stopped
        drain.deadlineTimer?.cancel()
        drain.statusTimer?.cancel()
        removeIPCObjects()
        watcher?.stop()
        logger.info("all workers stopped; IPC objects removed")
        onStopped?()
        onStopped = nil
    }

    /// Unlinks everything this instance created. Jobs' segments are unlinked as they finish; this
    /// sweeps up whatever a failed start left. The scoreboard goes last: until then, its lock
    /// (held until the process exits) tells other instances that these objects are not stale.
    func removeIPCObjects() {
        let names = configuration.names
        for index in 0..<configuration.maxWorkers { MessageQueue.unlink(name: names.commands(slot: index)) }
        for id in jobs.keys { SharedSegment.unlink(name: names.job(id)) }
        events.close()
        MessageQueue.unlink(name: names.events)
        SharedSegment.unlink(name: names.scoreboard)
    }

    // MARK: What clients and systemd see

    /// The drain, for `Status`; nil while the daemon is not shutting down.
    func drainInfo() -> DrainInfo? {
        guard let reason = drain.reason, lifecycle == .draining || lifecycle == .stopped else { return nil }
        return DrainInfo(reason: reason, timeoutSeconds: Double(nanoseconds(configuration.drainTimeout)) / 1e9,
                         secondsLeft: drain.deadlinePassed ? 0 : drainSecondsLeft)
    }

    /// Seconds until running jobs are cancelled (0 once the deadline has come).
    private var drainSecondsLeft: Double {
        max(0, Double(drain.deadline - MonotonicClock.nanoseconds) / 1e9)
    }

    /// STATUS= while shutting down: `stopping (SIGTERM): draining 2 jobs, deadline in 28s`.
    func stoppingStatusLine(_ status: StatusReply) -> String? {
        guard let reason = drain.reason, lifecycle == .draining || lifecycle == .stopped else { return nil }
        let running = status.jobsRunning
        let jobs = running == 1 ? "1 job" : "\(running) jobs"
        if running > 0, !drain.deadlinePassed {
            return "stopping (\(reason)): draining \(jobs), deadline in \(Int(drainSecondsLeft.rounded(.up)))s"
        }
        if running > 0 {
            return "stopping (\(reason)): cancelling \(jobs)"
        }
        let left = status.workers.filter { $0.pid != 0 }.count
        return "stopping (\(reason)): waiting for \(left == 1 ? "1 worker" : "\(left) workers") to exit"
    }

    /// Why `Run` is refused during a shutdown.
    var shutdownRefusal: String {
        let running = runningJobIDs.count
        var reason = "the daemon is shutting down (\(drain.reason ?? "stopping")) and accepts no new jobs"
        if running > 0 {
            reason += drain.deadlinePassed
                ? "; its \(running) running job(s) are being cancelled"
                : "; its \(running) running job(s) may finish within \(Int(drainSecondsLeft.rounded(.up)))s"
        }
        return reason
    }
}
