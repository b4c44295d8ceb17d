import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager about the daemon's state (sd_notify): READY=1, STATUS=..., STOPPING=1.
/// Without NOTIFY_SOCKET (not run by systemd) every call is a no-op.
public struct ServiceNotifier: Sendable {
    public let enabled: Bool

    public init(environment: [String: String]) {
        enabled = environment["NOTIFY_SOCKET"] != nil
    }

    public func notify(_ state: String) {
        guard enabled else { return }
        _ = sd_notify(0, state)
    }
}
