import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Pauses accepting when accept(2) fails for want of descriptors or memory. The listening socket
/// stays readable while clients wait, so without a pause the loop would retry at once, forever (a
/// busy loop at 100% CPU); with it, the waiting clients are accepted once descriptors are free.
/// The connection limits are fitted to RLIMIT_NOFILE (DescriptorBudget), so this is the backstop.
enum AcceptBackoff {
    static let pause = TimeAmount.milliseconds(100)
    /// At most one warning this often while accepting keeps failing.
    static let warningInterval = TimeAmount.seconds(10)

    static func handler(logger: Logger) -> AcceptBackoffHandler {
        var lastWarning: NIODeadline?
        var failuresSinceWarning = 0
        return AcceptBackoffHandler(shouldForwardIOErrorCaught: false) { error in
            guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else { return nil }
            failuresSinceWarning += 1
            let now = NIODeadline.now()
            if lastWarning.map({ now - $0 >= warningInterval }) ?? true {
                logger.warning("cannot accept control connections: \(error); pausing accepts for \(pause.nanoseconds / 1_000_000) ms at a time",
                               metadata: ["failures": "\(failuresSinceWarning)"])
                lastWarning = now
                failuresSinceWarning = 0
            }
            return pause
        }
    }
}
