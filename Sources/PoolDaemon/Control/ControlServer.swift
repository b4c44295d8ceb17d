import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What every control connection shares: the pool, the settings, who may do what, and the count
/// of open connections. Lives on the event loop that serves the socket and runs the pool.
final class ControlServer {
    let controller: PoolController
    let settings: ControlSocketSettings
    let policy: AccessPolicy
    let limiter: ConnectionLimiter
    let logger: Logger

    init(controller: PoolController, settings: ControlSocketSettings, logger: Logger) {
        self.controller = controller
        self.settings = settings
        self.policy = AccessPolicy(controlGroup: settings.controlGroup)
        self.limiter = ConnectionLimiter(maxConnections: settings.maxConnections, maxPerUID: settings.maxConnectionsPerUID)
        self.logger = logger
    }

    /// Sets up an accepted connection's pipeline: framing, then the varlink handler.
    func initialize(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(VarlinkFrameDecoder(maxMessageSize: settings.maxMessageSize)))
        try channel.pipeline.syncOperations.addHandler(VarlinkConnectionHandler(server: self))
    }

    /// Raises the soft limit on open descriptors to the hard one: the connection limits, not an
    /// accident of the environment (1024 under systemd), should decide how many clients are served.
    /// The daemon uses epoll, never select(2), so descriptors above 1024 are fine.
    static func raiseDescriptorLimit() -> UInt {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = withUnsafePointer(to: limit) { setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), $0) }
            _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        return UInt(limit.rlim_cur)
    }
}
