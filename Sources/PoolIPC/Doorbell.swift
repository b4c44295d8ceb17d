import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// An eventfd that wakes whoever waits on it: the workers ring it after each message they put on
/// the event queue, so that the daemon's event loop, which can wait on an eventfd but not on a
/// message queue, takes the message itself rather than through another thread. The count means
/// nothing; the queue holds the messages. One descriptor serves both sides (the workers inherit
/// it), and it is non-blocking: a ring never blocks a worker.
public struct Doorbell: Sendable {
    public let descriptor: Int32

    /// A new doorbell (close-on-exec: a child gets it only when spawned inheriting it).
    public static func make() throws(IPCError) -> Doorbell {
        let descriptor = pool_eventfd()
        guard descriptor >= 0 else { throw IPCError("eventfd") }
        return Doorbell(descriptor: descriptor)
    }

    /// The doorbell a worker inherited.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Wakes the reader.
    public func ring() {
        var one: UInt64 = 1
        while write(descriptor, &one, 8) < 0, errno == EINTR {}
    }
}
