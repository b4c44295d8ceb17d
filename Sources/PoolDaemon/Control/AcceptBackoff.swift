import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Pauses accepting when accept(2) fails for want of descriptors or memory. The listening socket
/// stays readable while clients wait, so the loop would retry at once, forever: a busy loop at 100%
/// CPU. NIO's own AcceptBackoffHandler only delays the next read request, and the channel stays
/// registered for readability after a failed accept, so epoll keeps waking the loop; turning
/// autoRead off takes the socket out of epoll until the pause is over. The waiting clients are then
/// accepted once descriptors are free. The connection limits are fitted to RLIMIT_NOFILE
/// (DescriptorBudget), so this is the backstop. Lives on the server channel's pipeline.
final class AcceptBackoff: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    static let pause = TimeAmount.milliseconds(100)
    /// At most one warning this often while accepting keeps failing.
    static let warningInterval = TimeAmount.seconds(10)

    private let logger: Logger
    private var resume: Scheduled<Void>?
    private var lastWarning: NIODeadline?
    private var pausesSinceWarning = 0

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        guard resume == nil, let options = context.channel.syncOptions else { return }
        pausesSinceWarning += 1
        let now = NIODeadline.now()
        if lastWarning.map({ now - $0 >= Self.warningInterval }) ?? true {
            logger.warning("cannot accept control connections: \(error); pausing accepts for \(Self.pause.nanoseconds / 1_000_000) ms at a time",
                           metadata: ["pauses": "\(pausesSinceWarning)"])
            lastWarning = now
            pausesSinceWarning = 0
        }
        try? options.setOption(.autoRead, value: false)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: Self.pause) { [self] in
            resume = nil
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }
}
