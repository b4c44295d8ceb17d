import NIOCore
import PoolProtocol

/// Where the published status comes from: the controller, which alone sees every owner's part.
protocol StatusSource: AnyObject {
    func statusReply() -> StatusReply
    /// STATUS= while the daemon stops (the lifecycle's line), nil while it runs.
    func stoppingStatusLine(_ status: StatusReply) -> String?
    /// Whether jobs run, whose progress changes without any event to push the status for.
    var hasRunningJobs: Bool { get }
}

/// The pool's status as others see it: the clients following it (`Status` with `more`) and
/// systemd's STATUS=. Every change of one loop turn is pushed once; while jobs run and clients
/// follow, the status is pushed every `progressInterval` too, for the jobs' progress (one timer
/// for all). Lives on the event loop.
final class StatusPublisher {
    private let eventLoop: any EventLoop
    private let notifier: ServiceNotifier
    private let progressInterval: Duration
    weak var source: (any StatusSource)?
    private var followers: [Int: (StatusReply) -> Void] = [:]
    private var nextFollowerID = 1
    private var flushScheduled = false
    private var progressTimer: Scheduled<Void>?

    init(eventLoop: any EventLoop, notifier: ServiceNotifier, progressInterval: Duration) {
        self.eventLoop = eventLoop
        self.notifier = notifier
        self.progressInterval = progressInterval
    }

    /// Adds a client that gets every status from now on; returns what `unfollow` takes.
    func follow(_ follower: @escaping (StatusReply) -> Void) -> Int {
        let id = nextFollowerID
        nextFollowerID += 1
        followers[id] = follower
        scheduleProgress()
        return id
    }

    func unfollow(_ id: Int) {
        followers[id] = nil
    }

    /// Coalesces every change made during one loop turn into one status push. With no follower
    /// and no service manager there is no one to push to: the status is not even made (a job's
    /// start and end would each build one).
    func noteChange() {
        guard !flushScheduled, notifier.enabled || !followers.isEmpty else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            guard let source else { return }
            let status = source.statusReply()
            notifier.status(Self.statusLine(status, stopping: source.stoppingStatusLine(status)))
            for follower in followers.values { follower(status) }
            scheduleProgress()
        }
    }

    private func scheduleProgress() {
        guard progressTimer == nil, !followers.isEmpty, source?.hasRunningJobs == true else { return }
        progressTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(progressInterval)) { [self] in
            progressTimer = nil
            guard !followers.isEmpty, let source, source.hasRunningJobs else { return }
            let status = source.statusReply()
            for follower in followers.values { follower(status) }
            scheduleProgress()
        }
    }

    /// The one-line summary for systemd's STATUS=; `stopping` replaces it while the daemon stops.
    static func statusLine(_ status: StatusReply, stopping: String?) -> String {
        if let stopping { return stopping }
        let ready = status.workers.filter { $0.state == .ready || $0.state == .busy }.count
        let failed = status.workers.filter { $0.state == .failed }.count
        var line = "\(ready)/\(status.poolSize) workers up, \(status.jobsRunning) jobs running, \(status.jobsQueued) queued, \(status.jobsFinished) done"
        if failed > 0 { line += ", \(failed) slots failed" }
        if let problem = status.history?.problem {
            line += "; job history failing: " + problem
        } else if let incident = status.history?.lastIncident {
            line += "; job history: " + incident
        }
        return line
    }
}
