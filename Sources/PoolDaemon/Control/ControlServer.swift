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
}
