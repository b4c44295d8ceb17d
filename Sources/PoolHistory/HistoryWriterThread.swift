import CPooldShim
import NIOCore
import NIOPosix

/// The thread every database access of the history runs on: one event loop of its own, at the
/// lowest priority (nice 19).
///
/// A history write is a burst of CPU (about 10 µs a record, in batches every `coalescing`), and
/// on two cores it often holds the core that the event loop or a worker is woken on next: at
/// the default priority the woken thread waited behind the whole batch, and one Run in forty
/// took the batch's time (p99 five times p50). At nice 19 its weight is 15 against 1024, so the
/// scheduler hands the core to a woken daemon or worker thread at once; the writer still gets
/// its share when the machine is busy, so records are not held back for long (unlike
/// SCHED_IDLE, which a busy machine could starve). A DispatchQueue cannot be given such a thread
/// (libdispatch sets its threads' priority itself, per quality of service), hence a loop.
final class HistoryWriterThread: Sendable {
    static let nice: Int32 = 19

    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop

    init(name: String) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        loop.execute {
            // Lowering its own priority needs no privilege; if it fails the writer only runs at
            // the default priority, as it did before.
            _ = pool_thread_name_and_nice(name, Self.nice)
        }
    }

    func async(_ body: @escaping @Sendable () -> Void) {
        loop.execute(body)
    }

    func async(after delay: TimeAmount, _ body: @escaping @Sendable () -> Void) {
        loop.scheduleTask(in: delay, body)
    }

    /// Runs `body` on the thread and waits for it. Never call it from the thread itself.
    func sync<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        // The loop is shut down only after the last `sync` (close), so `submit` cannot fail.
        try! loop.submit(body).wait()
    }

    /// Ends the thread once what is queued has run; what is scheduled for later is dropped.
    func stop() {
        group.shutdownGracefully { _ in }
    }

    deinit {
        // A history dropped without `close` (a failed start, a test) ends its thread too; a
        // second shutdown only reports that it was one.
        stop()
    }
}
