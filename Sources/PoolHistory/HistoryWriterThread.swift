import CPooldShim
import NIOCore
import NIOPosix
import Synchronization

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
/// (acknowledged once written) took 140-230 ms instead of 45-60, and a stop, which writes what is
/// pending, 8-9 s instead of 2. So work someone waits for is done urgently: the thread is raised
/// to SCHED_OTHER at nice 19 until it is (which needs CAP_SYS_NICE or RLIMIT_NICE 1: the unit's
/// `LimitNICE=+19`; without either it stays SCHED_IDLE). A DispatchQueue cannot be given such a
/// thread (libdispatch sets its threads' priority itself, per quality of service), hence a loop.
final class HistoryWriterThread: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    /// The thread's id, once it has started (0 before).
    private let threadID = Atomic<Int32>(0)
    /// Urgent work queued or running: the thread is SCHED_OTHER while there is any.
    private let urgentWork = Atomic<Int>(0)

    init(name: String) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        loop.execute { [self] in
            // Lowering its own priority needs no privilege; where both ways are refused the
            // writer runs at the default priority, which costs only the tail above.
            _ = pool_thread_name_and_background(name)
            threadID.store(pool_gettid(), ordering: .releasing)
            // Urgent work asked for before the id was known could not raise the thread.
            if urgentWork.load(ordering: .acquiring) > 0 { _ = pool_thread_set_idle(0, 0) }
        }
    }

    func async(_ body: @escaping @Sendable () -> Void) {
        loop.execute(body)
    }

    func async(after delay: TimeAmount, _ body: @escaping @Sendable () -> Void) {
        loop.scheduleTask(in: delay, body)
    }

    /// Runs `body` on the thread and waits for it, urgently. Never call it from the thread itself.
    func sync<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        raise()
        // The loop is shut down only after the last `sync` (close), so `submit` cannot fail.
        return try! loop.submit { [self] in
            defer { lower() }
            return body()
        }.wait()
    }

    /// Runs `body` on the thread, urgently: someone waits for what it does.
    func urgently(_ body: @escaping @Sendable () -> Void) {
        raise()
        loop.execute { [self] in
            body()
            lower()
        }
    }

    private func raise() {
        urgentWork.wrappingAdd(1, ordering: .acquiringAndReleasing)
        let thread = threadID.load(ordering: .acquiring)
        if thread != 0 { _ = pool_thread_set_idle(thread, 0) }
    }

    /// On the thread, after urgent work: back to SCHED_IDLE once no more is queued.
    private func lower() {
        guard urgentWork.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        _ = pool_thread_set_idle(0, 1)
        // Work that raised the thread between the count and the change would find it idle.
        if urgentWork.load(ordering: .acquiring) > 0 { _ = pool_thread_set_idle(0, 0) }
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
