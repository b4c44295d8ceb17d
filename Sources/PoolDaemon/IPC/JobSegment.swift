import Atomics
import CPooldShim
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// A job's shared-memory segment: a header every kind shares (participants, a cancel flag, a start
/// barrier), one record per participant (progress, timing) and an area of the kind's own. The
/// daemon creates and fills it before dispatching; workers map it by name and read it.
public final class JobSegment: Sendable {
    public let segment: SharedSegment
    public let participants: Int
    /// Where the kind's own area starts.
    public let kindAreaOffset: Int

    static let magic: UInt32 = 0x504F_4F4C  // "POOL"
    static let headerSize = 64
    static let participantSize = 64

    /// One participant's record.
    public struct Participant: @unchecked Sendable {
        // @unchecked: atomics over shared memory.
        let base: UnsafeMutableRawPointer

        /// Operations or items done so far: read by the daemon for progress.
        public var done: UnsafeAtomic<Int64> { .init(at: (base + 0).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        public var startedNanos: UnsafeAtomic<Int64> { .init(at: (base + 8).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        public var finishedNanos: UnsafeAtomic<Int64> { .init(at: (base + 16).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        public var pid: UnsafeAtomic<Int64> { .init(at: (base + 24).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        public var slot: UnsafeAtomic<Int64> { .init(at: (base + 32).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        /// Kind-specific counters (lock recoveries for the counter job).
        public var extra: UnsafeAtomic<Int64> { .init(at: (base + 40).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        /// When this participant last spun at the start gate: fresh while it runs there.
        var gateStamp: UnsafeAtomic<Int64> { .init(at: (base + 48).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
    }

    static func layout(participants: Int, kindAreaSize: Int) -> (size: Int, kindAreaOffset: Int) {
        var layout = SegmentLayout()
        _ = layout.reserveBytes(headerSize)
        _ = layout.reserveBytes(participantSize * participants)
        let kindArea = layout.reserveBytes(max(kindAreaSize, 1))
        return (layout.size, kindArea)
    }

    /// Creates the segment for a job with `participants` workers and a kind area of `kindAreaSize`.
    public static func create(name: String, kind: UInt32, participants: Int, kindAreaSize: Int) throws(IPCError) -> JobSegment {
        let (size, kindArea) = layout(participants: participants, kindAreaSize: kindAreaSize)
        let segment = try SharedSegment.create(name: name, size: size)
        let header = segment.base
        header.storeBytes(of: magic, toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: kind, toByteOffset: 4, as: UInt32.self)
        header.storeBytes(of: UInt32(participants), toByteOffset: 8, as: UInt32.self)
        return JobSegment(segment: segment, participants: participants, kindAreaOffset: kindArea)
    }

    /// Maps a job's segment in a worker.
    public static func open(name: String) throws(IPCError) -> JobSegment {
        let segment = try SharedSegment.open(name: name)
        guard segment.size >= headerSize, segment.base.load(fromByteOffset: 0, as: UInt32.self) == magic else {
            throw IPCError("open job segment \(name)", errno: 74 /* EBADMSG */, hint: "not a poold job segment")
        }
        let participants = Int(segment.base.load(fromByteOffset: 8, as: UInt32.self))
        let (_, kindArea) = layout(participants: participants, kindAreaSize: 0)
        return JobSegment(segment: segment, participants: participants, kindAreaOffset: kindArea)
    }

    private init(segment: SharedSegment, participants: Int, kindAreaOffset: Int) {
        self.segment = segment
        self.participants = participants
        self.kindAreaOffset = kindAreaOffset
    }

    public var kind: UInt32 { segment.base.load(fromByteOffset: 4, as: UInt32.self) }

    /// Set by the daemon to stop the job; workers check it between chunks of work.
    public var cancelFlag: UnsafeAtomic<UInt32> {
        .init(at: (segment.base + 12).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// Counts participants that reached the start line; the futex the barrier sleeps on.
    public var barrier: FutexWord { FutexWord(at: segment.base + 16) }

    public var isCancelled: Bool { cancelFlag.load(ordering: .relaxed) != 0 }

    public func cancel() {
        cancelFlag.store(1, ordering: .releasing)
        // Anyone asleep at the start barrier or in `pause` must see the flag now.
        barrier.wake()
        cancelWord.wake()
    }

    private var cancelWord: FutexWord { FutexWord(at: segment.base + 12) }

    /// Sleeps for `nanoseconds` unless the job is cancelled meanwhile (then returns false at once):
    /// the notebook's `time.sleep`, interruptible. The sleep is sliced so that the worker's heartbeat
    /// stays fresh: a long sleep is not a hang.
    public func pause(nanoseconds: Int64, beating heartbeat: Scoreboard.Record) -> Bool {
        guard nanoseconds > 0 else { return !isCancelled }
        let deadline = MonotonicClock.nanoseconds + nanoseconds
        while true {
            if isCancelled { return false }
            let left = deadline - MonotonicClock.nanoseconds
            if left <= 0 { return true }
            heartbeat.beat()
            _ = cancelWord.wait(whileEqualTo: 0, timeoutNanos: min(left, Self.heartbeatSlice))
        }
    }

    /// The longest a worker sleeps between heartbeats.
    static let heartbeatSlice: Int64 = 100_000_000

    public func participant(_ index: Int) -> Participant {
        precondition(index >= 0 && index < participants, "participant \(index) outside the job")
        return Participant(base: segment.base + Self.headerSize + index * Self.participantSize)
    }

    public var kindArea: UnsafeMutableRawPointer { segment.base + kindAreaOffset }

    /// Initialises a robust mutex in the kind area while the job is set up; on failure the
    /// segment is unlinked, since the job cannot run.
    public func initializeMutex(atKindOffset offset: Int) throws(IPCError) {
        try initializeMutex((kindArea + offset).assumingMemoryBound(to: pthread_mutex_t.self))
    }

    /// Initialises the robust mutex field of the kind's area (see `initializeMutex(atKindOffset:)`).
    public func initializeMutex(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) throws(IPCError) {
        do {
            try RobustMutex(mutex).initialize()
        } catch {
            SharedSegment.unlink(name: segment.name)
            throw error
        }
    }

    /// The start gate: returns once every participant has arrived and is running, so that they
    /// start together (a race needs contenders). Returns false if the job was cancelled meanwhile.
    ///
    /// Arriving, a participant spins briefly (the others are usually a few microseconds away), then
    /// sleeps on the futex, so that a missing participant costs no CPU. The last to arrive wakes the
    /// sleepers. A woken process is not yet running, though: on 2 cores it can wait for the waker's
    /// time slice, and a worker that starts at once finishes a million updates before its peer
    /// runs. So each participant then announces that it runs and spins, stamping the time, until
    /// all have announced and every stamp is fresh: all are on a CPU at once. The first to see it
    /// says go, and all leave within microseconds of each other. (Bounded: one that dies or cannot
    /// get a CPU here must not hold the others for long. With more participants than CPUs,
    /// announcing is all there is.)
    ///
    /// A replacement arrives and announces again (one more than the participants, harmless); one
    /// whose predecessor died before arriving releases the others.
    public func arriveAndWaitForAll(beating heartbeat: Scoreboard.Record, participant: Int) -> Bool {
        let count = UInt32(participants)
        let word = barrier
        var seen = word.atomic.loadThenWrappingIncrement(ordering: .acquiringAndReleasing) + 1
        if seen >= count {
            word.wake()
        } else {
            let spinUntil = MonotonicClock.nanoseconds + Self.arrivalSpin
            while seen < count {
                if isCancelled { return false }
                if MonotonicClock.nanoseconds < spinUntil {
                    for _ in 0..<64 { pool_cpu_relax() }
                } else {
                    // A bounded wait: a participant that dies before arriving must not strand the others.
                    heartbeat.beat()
                    _ = word.wait(whileEqualTo: seen, timeoutNanos: Self.heartbeatSlice)
                }
                seen = word.atomic.load(ordering: .acquiring)
            }
        }
        let running = runningCount
        let together = participants <= Self.onlineCPUs
        let mine = self.participant(participant).gateStamp
        let start = MonotonicClock.nanoseconds
        mine.store(start, ordering: .relaxed)
        running.wrappingIncrement(ordering: .acquiringAndReleasing)
        let go = goFlag
        while !isCancelled, go.load(ordering: .acquiring) == 0 {
            let now = MonotonicClock.nanoseconds
            mine.store(now, ordering: .relaxed)
            if running.load(ordering: .acquiring) >= count,
               !together || (0..<participants).allSatisfy({ now - self.participant($0).gateStamp.load(ordering: .relaxed) < Self.freshStamp }) {
                go.store(1, ordering: .releasing)
                break
            }
            if now - start > Self.runningSpinLimit { break }
            // With more participants than CPUs, some wait for this very CPU: let them have it.
            // Otherwise yielding would only hand the CPU to another program for a time slice.
            if together { pool_cpu_relax() } else { sched_yield() }
        }
        return !isCancelled
    }

    /// Counts participants past the gate and running (see `arriveAndWaitForAll`).
    var runningCount: UnsafeAtomic<UInt32> {
        .init(at: (segment.base + 20).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// Set once every participant was seen running at the start gate: they leave it together.
    var goFlag: UnsafeAtomic<UInt32> {
        .init(at: (segment.base + 24).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// How long an arriving participant spins before it sleeps.
    static let arrivalSpin: Int64 = 200_000
    /// How long a released participant spins at most, waiting for the others to run.
    static let runningSpinLimit: Int64 = 50_000_000
    /// A stamp this recent says its participant is on a CPU now (a spin round takes well under a
    /// microsecond; a descheduled one stops stamping for a time slice, milliseconds).
    static let freshStamp: Int64 = 20_000
    static let onlineCPUs = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
