/// What `Status` says while the daemon shuts down: running jobs may finish until the drain
/// deadline, then they are cancelled.
public struct DrainInfo: Codable, Sendable, Equatable {
    /// What asked for the shutdown: `SIGTERM`, `SIGINT` or `Shutdown`.
    public var reason: String
    /// The drain timeout the daemon was started with (`--drain-timeout`).
    public var timeoutSeconds: Double
    /// Until running jobs are cancelled; 0 once they are being cancelled.
    public var secondsLeft: Double

    public init(reason: String, timeoutSeconds: Double, secondsLeft: Double) {
        self.reason = reason
        self.timeoutSeconds = timeoutSeconds
        self.secondsLeft = secondsLeft
    }
}
