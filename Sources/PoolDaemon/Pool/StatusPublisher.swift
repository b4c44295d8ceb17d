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
/// systemd's STATUS=. Followers get every change of one loop turn in one push; while jobs run and
/// clients follow, the status is pushed every `progressInterval` too, for the jobs' progress (one
/// timer for all). STATUS= goes out at most once per `serviceStatusInterval`, as PHP-FPM's does
/// (every `systemd_interval`): at a job's rate, a line per change was a status built, a thread
/// woken to send it and a message for the service manager (PID 1) to parse, for every job, for a
/// line read by a person (`systemctl status`). A change after a quiet interval goes out at once,
/// and the last of a burst within the interval after the one before. Lives on the event loop.
final class StatusPublisher {
    static let serviceStatusInterval = TimeAmount.seconds(1)

    private let eventLoop: any EventLoop
    private let notifier: ServiceNotifier
    private let progressInterval: Duration
    weak var source: (any StatusSource)?
    private var followers: [Int: (StatusReply) -> Void] = [:]
    private var nextFollowerID = 1
    private var flushScheduled = false
    private var progressTimer: Scheduled<Void>?
    private var replyText = StatusReplyText()
    /// When STATUS= last went out, and whether one is due (at the end of this turn or later).
    private var serviceStatusSent: NIODeadline?
    private var serviceStatusDue = false

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

    /// The JSON text of `status` as a reply's parameters (nil: encode it another way), from the
    /// text kept for the last status while only the uptime differs.
    func text(of status: StatusReply) -> ByteBuffer? {
        replyText.text(of: status)
    }

    /// Coalesces every change made during one loop turn into one push to the followers, and
    /// changes within `serviceStatusInterval` into one STATUS=. With no follower and no service
    /// manager there is no one to push to: the status is not even made (a job's start and end
    /// would each build one).
    func noteChange() {
        if notifier.enabled { scheduleServiceStatus() }
        guard !flushScheduled, !followers.isEmpty else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            guard let source, !followers.isEmpty else { return }
            let status = source.statusReply()
            for follower in followers.values { follower(status) }
            scheduleProgress()
        }
    }

    private func scheduleServiceStatus() {
        guard !serviceStatusDue else { return }
        serviceStatusDue = true
        let send = { [self] in
            serviceStatusDue = false
            serviceStatusSent = .now()
            guard let source else { return }
            let status = source.statusReply()
            notifier.status(Self.statusLine(status, stopping: source.stoppingStatusLine(status)))
        }
        if let sent = serviceStatusSent, NIODeadline.now() < sent + Self.serviceStatusInterval {
            eventLoop.assumeIsolated().scheduleTask(deadline: sent + Self.serviceStatusInterval, send)
        } else {
            eventLoop.assumeIsolated().execute(send)
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

/// A status's JSON text, kept from one Status call to the next: it is written again only when
/// the status differs in more than its uptime (which always changes), and otherwise the kept text
/// is copied around the new uptime. Whether it still holds is decided by comparing the whole
/// status each time, not by being told of changes, so no change can be missed (the history's
/// writer and a drain's clock change it without an event).
struct StatusReplyText {
    private let allocator = ByteBufferAllocator()
    /// What the text was written from (but for its uptime, that of the last call).
    private var written: StatusReply?
    /// The text before the uptime's value, and after it.
    private var head = ByteBuffer()
    private var tail = ByteBuffer()

    mutating func text(of status: StatusReply) -> ByteBuffer? {
        // The kept status takes the new uptime in place: compared so, and not copied (a status's
        // copy and its release cost as much as the comparison).
        written?.uptimeSeconds = status.uptimeSeconds
        if written != status {
            written = nil
            guard let (text, uptime) = try? JSONStreamEncoder.encode(status, locating: "uptimeSeconds", allocator: allocator) else { return nil }
            head = text.getSlice(at: text.readerIndex, length: uptime.lowerBound - text.readerIndex)!
            tail = text.getSlice(at: uptime.upperBound, length: text.writerIndex - uptime.upperBound)!
            written = status
        }
        var buffer = allocator.buffer(capacity: head.readableBytes + 24 + tail.readableBytes)
        buffer.writeImmutableBuffer(head)
        do {
            try JSONStreamEncoder.writeNumber(status.uptimeSeconds, to: &buffer)
        } catch {
            return nil
        }
        buffer.writeImmutableBuffer(tail)
        return buffer
    }
}
