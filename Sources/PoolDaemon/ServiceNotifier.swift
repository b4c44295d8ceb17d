import CSystemd
import Dispatch
import Synchronization

/// Tells the service manager about the daemon's state (sd_notify): READY=1, STATUS=..., STOPPING=1.
/// Without NOTIFY_SOCKET (not run by systemd) every call is a no-op.
///
/// sd_notify sends a datagram on a blocking socket, so a manager that reads slowly would stall the
/// sender: messages go out from a queue of their own, never from the event loop. STATUS= lines
/// are coalesced (only the latest matters), so a slow reader costs nothing but stale status.
public final class ServiceNotifier: Sendable {
    public let enabled: Bool
    private let queue = DispatchQueue(label: "poold.notify")
    /// The newest STATUS= text not yet sent; nil when a flush is not pending.
    private let pendingStatus = Mutex<String?>(nil)

    public init(environment: [String: String]) {
        enabled = environment["NOTIFY_SOCKET"] != nil
    }

    /// Sends `state` (one or more `KEY=value` lines) in order with what was sent before.
    public func notify(_ state: String) {
        guard enabled else { return }
        queue.async { _ = sd_notify(0, state) }
    }

    /// Sets the one-line status; bursts of changes send only the last.
    public func status(_ line: String) {
        guard enabled else { return }
        let flushPending = pendingStatus.withLock { pending -> Bool in
            defer { pending = line }
            return pending != nil
        }
        guard !flushPending else { return }
        queue.async { [self] in
            guard let line = pendingStatus.withLock({ pending -> String? in defer { pending = nil }; return pending }) else { return }
            _ = sd_notify(0, "STATUS=" + line)
        }
    }

    /// Waits up to `seconds` for queued messages to go out (before the process exits).
    public func flush(timeoutSeconds seconds: Double) {
        guard enabled else { return }
        let done = DispatchSemaphore(value: 0)
        queue.async { done.signal() }
        _ = done.wait(timeout: .now() + seconds)
    }
}
