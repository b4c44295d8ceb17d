import CPooldShim
import PoolIPC
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the watcher thread saw.
enum WatchedEvent: Sendable {
    case worker(WorkerEvent)
    /// The process behind this pidfd has exited (it is not reaped yet).
    case processExited(pidfd: Int32)
    case signal(Int32)
}

/// One thread that blocks in poll(2) on what the event loop cannot wait for itself: the workers'
/// pidfds and a signalfd. It only waits and forwards; all decisions are made on the event loop.
///
/// The workers' event queue is not among them: a worker rings the doorbell (an eventfd, see
/// `Doorbell`) after each event it sends, and the event loop, woken by it, takes the events from
/// the queue itself (`WorkerEventReader`), without a hop through this thread. Before it reports a process gone,
/// the watcher takes what is left on the queue, so that what a worker said before it died (its
/// part of a job ended) comes before its death, whichever of the two takes the message.
final class EventWatcher: Sendable {
    private let events: MessageQueue
    private let signalDescriptor: Int32
    private let wakeDescriptor: Int32
    private let pidfds = Mutex<Set<Int32>>([])
    private let stopping = Mutex(false)
    /// When the watcher last went round its loop (monotonic ns): the supervisor's sign of life.
    private let lastRound = Atomic<Int64>(0)
    /// How long poll may sleep with nothing to report before the watcher records a round anyway.
    static let roundInterval: Int32 = 1000
    private let deliver: @Sendable ([WatchedEvent]) -> Void

    /// `events` must be opened non-blocking; `deliver` runs on the watcher thread and should hand
    /// the batch to the event loop.
    init(events: MessageQueue, signalDescriptor: Int32, deliver: @escaping @Sendable ([WatchedEvent]) -> Void) throws(IPCError) {
        let wake = pool_eventfd()
        guard wake >= 0 else { throw IPCError("eventfd") }
        self.events = events
        self.signalDescriptor = signalDescriptor
        self.wakeDescriptor = wake
        self.deliver = deliver
    }

    func start() {
        let thread = ThreadStarter { [self] in self.loop() }
        thread.start(name: "poold-watcher")
    }

    /// Starts watching a child's pidfd.
    func watch(pidfd: Int32) {
        _ = pidfds.withLock { $0.insert(pidfd) }
        wake()
    }

    /// Nanoseconds since the watcher last went round its loop.
    var sinceLastRound: Int64 { MonotonicClock.nanoseconds - lastRound.load(ordering: .relaxed) }

    func stop() {
        stopping.withLock { $0 = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
    }

    private func loop() {
        var descriptors: [pollfd] = []
        var batch: [WatchedEvent] = []
        while !stopping.withLock({ $0 }) {
            let watched = pidfds.withLock { $0 }
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0))
            descriptors.append(pollfd(fd: signalDescriptor, events: Int16(POLLIN), revents: 0))
            for fd in watched { descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }

            lastRound.store(MonotonicClock.nanoseconds, ordering: .relaxed)
            let ready = poll(&descriptors, nfds_t(descriptors.count), Self.roundInterval)
            if ready <= 0 { continue }  // a quiet second, or EINTR
            if descriptors[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeDescriptor, &value, 8)
            }
            if descriptors[1].revents != 0 {
                while true {
                    let signal = pool_signalfd_read(signalDescriptor)
                    if signal < 0 { break }
                    batch.append(.signal(signal))
                }
            }
            var drained = false
            for entry in descriptors.dropFirst(2) where entry.revents != 0 {
                if !drained {
                    while let event = try? events.receive(WorkerEvent.self) { batch.append(.worker(event)) }
                    drained = true
                }
                // Forget it here so it is not reported again; the loop reaps and closes it.
                _ = pidfds.withLock { $0.remove(entry.fd) }
                batch.append(.processExited(pidfd: entry.fd))
            }
            if !batch.isEmpty {
                deliver(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        close(wakeDescriptor)
    }
}

/// A detached pthread running a closure.
struct ThreadStarter: Sendable {
    let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start(name: String) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            let name: String
            init(_ body: @escaping @Sendable () -> Void, _ name: String) { self.body = body; self.name = name }
        }
        let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = pool_set_thread_name(String(box.name.prefix(15)))
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }
}
