import CPooldShim
import NIOCore
import NIOPosix

/// The thread every database access of the history runs on: one event loop of its own, a
/// background thread (SCHED_IDLE; nice 19 where that is refused).
///
/// A history write is a burst of CPU (about 10 µs a record, in batches every `coalescing`), and
/// on two cores it often holds the core that the event loop or a worker is woken on next. At
/// the default priority the woken thread waited behind the whole batch (one Run in forty took
/// the batch's time). At nice 19 it still often did on this kernel (6.18, whose EEVDF scheduler
/// lets a woken thread preempt only when it deems it eligible, whatever the weights): on two CPUs
/// a Run's p99 stayed at 400-500 µs, five times its p50. A SCHED_IDLE thread is preempted by any
/// other at once, by the policy's own rule (p99 140-160 µs, the same runs). The price: when
/// other work keeps every core busy the writer gets less (a weight of 3 against nice 19's 15), so
/// records wait longer in memory: with two spinning processes on the two cores, a detached Run
/// (acknowledged once written) took 140-230 ms instead of 45-60. A DispatchQueue cannot be given
/// such a thread (libdispatch sets its threads' priority itself, per quality of service), hence a
/// loop.
final class HistoryWriterThread: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop

    init(name: String) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        loop.execute {
            // Lowering its own priority needs no privilege; where both ways are refused the
            // writer runs at the default priority, which costs only the tail above.
            _ = pool_thread_name_and_background(name)
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
