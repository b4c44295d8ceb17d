/// The event job's parameters as a job reports them (every default filled in).
public struct EventParameters: Codable, Sendable, Equatable {
    /// Participants that wait without a timeout, and those that wait `timeout` at a time, in a loop.
    public var waiters: Int
    public var timeoutWaiters: Int
    /// Durations as text (`2s`, `500ms`).
    public var timeout: String
    /// When the daemon sets the event, after the job starts.
    public var setAfter: String

    public init(waiters: Int, timeoutWaiters: Int, timeout: String, setAfter: String) {
        self.waiters = waiters
        self.timeoutWaiters = timeoutWaiters
        self.timeout = timeout
        self.setAfter = setAfter
    }
}

/// Who received the event job's event, and how soon after the daemon set it.
public struct EventResult: JobResult {
    public static let kind = "event"

    /// Whether the daemon set the event (not when the job was cancelled first).
    public var set: Bool
    public var setAfter: String
    public var timeout: String
    /// Every participant, the plain waiters first.
    public var waiters: [EventWaiter]

    public init(set: Bool, setAfter: String, timeout: String, waiters: [EventWaiter]) {
        self.set = set
        self.setAfter = setAfter
        self.timeout = timeout
        self.waiters = waiters
    }
}

public struct EventWaiter: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var pid: Int
    public var withTimeout: Bool
    public var received: Bool
    /// Waits that timed out before the event was set.
    public var timeouts: Int
    /// From the set to this waiter's wake-up; absent when it received no event.
    public var wakeLatencyMicros: Double?

    public init(participant: Int, slot: Int, pid: Int, withTimeout: Bool, received: Bool, timeouts: Int,
                wakeLatencyMicros: Double? = nil) {
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.withTimeout = withTimeout
        self.received = received
        self.timeouts = timeouts
        self.wakeLatencyMicros = wakeLatencyMicros
    }
}

extension EventResult {
    public var summary: String {
        "\(waiters.filter(\.received).count) of \(waiters.count) waiters received the event"
    }
}
