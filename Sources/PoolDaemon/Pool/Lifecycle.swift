import PoolProtocol

/// The daemon's lifecycle: starting, running, draining, stopped. Every change goes through
/// `transition(on:)`, which returns what the controller is to do about it; the rest only reads.
///
/// Draining (SIGTERM, SIGINT, Shutdown): `Run` is refused, queued jobs are cancelled at once, idle
/// workers are asked to exit, and running jobs may go on until the drain deadline
/// (`--drain-timeout`). Then they are cancelled (the cancel flag, `cancelGrace` to notice it, then
/// SIGKILL) and end `cancelled`, their result the exact account of what they did. A busy worker
/// exits as soon as its part of a job has ended. A second stop request cuts the drain short.
/// Stopped: no worker process is left; every IPC object is unlinked.
struct Lifecycle {
    enum State: Equatable {
        case starting, running
        case draining(Drain)
        case stopped(Drain)
    }

    /// Where an orderly stop stands.
    struct Drain: Equatable {
        /// What asked for the stop (SIGTERM, SIGINT, Shutdown).
        let reason: String
        let timeout: Duration
        /// Loop-clock nanoseconds at which running jobs are cancelled.
        let deadline: Int64
        /// Set once running jobs were told to stop (the deadline came, a second stop request, or
        /// there was nothing to drain).
        var deadlinePassed: Bool
    }

    enum Event {
        /// No initial worker is still starting.
        case workersUp
        /// SIGTERM, SIGINT, the Shutdown call, a failed start.
        case stopRequested(reason: String, now: Int64, drainTimeout: Duration, runningJobs: Int)
        /// The drain deadline has come.
        case drainDeadlineReached
        /// No worker process is left, and none waits to respawn.
        case workersGone
    }

    enum Action: Equatable {
        /// READY=1; then the jobs submitted while the pool was starting are dispatched.
        case announceReady
        /// STOPPING=1, queued jobs cancelled, idle workers asked to exit.
        case beginDrain(Drain)
        /// Running jobs may go on until then: a timer for the deadline, STATUS= counting down.
        case scheduleDrainDeadline(Duration)
        /// Running jobs are cancelled now, for `reason`.
        case cancelRunningJobs(reason: String)
        /// As `cancelRunningJobs`, because the daemon was asked again to stop (by `askedBy`).
        case cutDrainShort(askedBy: String, reason: String)
        /// Every IPC object removed, the watcher stopped, the daemon's exit let go on.
        case finishStop
    }

    private(set) var state = State.starting

    mutating func transition(on event: Event) -> [Action] {
        switch (state, event) {
        case (.starting, .workersUp):
            state = .running
            return [.announceReady]
        case (.starting, .stopRequested(let reason, let now, let timeout, let running)),
             (.running, .stopRequested(let reason, let now, let timeout, let running)):
            let drain = Drain(reason: reason, timeout: timeout, deadline: now + nanoseconds(timeout),
                              deadlinePassed: running == 0 || timeout == .zero)
            state = .draining(drain)
            guard running > 0 else { return [.beginDrain(drain)] }
            if timeout == .zero {
                return [.beginDrain(drain), .cancelRunningJobs(reason: "the daemon is shutting down (\(reason)) with no drain time (--drain-timeout 0)")]
            }
            return [.beginDrain(drain), .scheduleDrainDeadline(timeout)]
        case (.draining(var drain), .stopRequested(let reason, _, _, _)):
            guard !drain.deadlinePassed else { return [] }
            drain.deadlinePassed = true
            state = .draining(drain)
            return [.cutDrainShort(askedBy: reason, reason: "the daemon is shutting down (\(drain.reason)) and was asked again to stop")]
        case (.draining(var drain), .drainDeadlineReached):
            guard !drain.deadlinePassed else { return [] }
            drain.deadlinePassed = true
            state = .draining(drain)
            return [.cancelRunningJobs(reason: "the daemon is shutting down (\(drain.reason)) and the job was still running at the drain deadline (\(DurationText.format(nanoseconds(drain.timeout))))")]
        case (.draining(let drain), .workersGone):
            state = .stopped(drain)
            return [.finishStop]
        case (.starting, _), (.running, _), (.draining, _), (.stopped, _):
            return []
        }
    }

    // MARK: Reading

    var isStarting: Bool { state == .starting }
    var isRunning: Bool { state == .running }
    var isDraining: Bool { if case .draining = state { true } else { false } }
    var isStopped: Bool { if case .stopped = state { true } else { false } }

    /// The stop in progress (or done), nil while the daemon starts or runs.
    var drain: Drain? {
        switch state {
        case .draining(let drain), .stopped(let drain): return drain
        case .starting, .running: return nil
        }
    }

    /// Whether a worker that dies in a job is replaced to finish its part: while the pool runs, and
    /// while it drains (until the deadline), since the drain exists to let running jobs complete.
    var acceptsReplacements: Bool {
        switch state {
        case .running: return true
        case .draining(let drain): return !drain.deadlinePassed
        case .starting, .stopped: return false
        }
    }

    /// What a call that needs a running pool is refused with, otherwise.
    var notRunningReason: String {
        "the daemon is \(isStarting ? "starting" : "shutting down")"
    }

    /// Nanoseconds of the drain left at `now` (0 once the deadline has come).
    func drainLeft(now: Int64) -> Int64 {
        guard let drain, !drain.deadlinePassed else { return 0 }
        return max(0, drain.deadline - now)
    }

    /// The drain, for `Status`; nil while the daemon is not shutting down.
    func drainInfo(now: Int64) -> DrainInfo? {
        guard let drain else { return nil }
        return DrainInfo(reason: drain.reason, timeoutSeconds: Double(nanoseconds(drain.timeout)) / 1e9,
                         secondsLeft: drain.deadlinePassed ? 0 : max(0, Double(drain.deadline - now) / 1e9))
    }

    /// STATUS= while shutting down: `stopping (SIGTERM): draining 2 jobs, deadline in 28s`.
    func stoppingStatusLine(_ status: StatusReply, now: Int64) -> String? {
        guard let drain else { return nil }
        let running = status.jobsRunning
        let jobs = running == 1 ? "1 job" : "\(running) jobs"
        if running > 0, !drain.deadlinePassed {
            return "stopping (\(drain.reason)): draining \(jobs), deadline in \(Int((max(0, Double(drain.deadline - now) / 1e9)).rounded(.up)))s"
        }
        if running > 0 {
            return "stopping (\(drain.reason)): cancelling \(jobs)"
        }
        let left = status.workers.filter { $0.pid != 0 }.count
        return "stopping (\(drain.reason)): waiting for \(left == 1 ? "1 worker" : "\(left) workers") to exit"
    }

    /// Why `Run` is refused during a shutdown.
    func shutdownRefusal(runningJobs running: Int, now: Int64) -> String {
        var reason = "the daemon is shutting down (\(drain?.reason ?? "stopping")) and accepts no new jobs"
        if running > 0, let drain {
            reason += drain.deadlinePassed
                ? "; its \(running) running job(s) are being cancelled"
                : "; its \(running) running job(s) may finish within \(Int((max(0, Double(drain.deadline - now) / 1e9)).rounded(.up)))s"
        }
        return reason
    }
}
