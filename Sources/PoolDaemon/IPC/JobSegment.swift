import Atomics
import CPooldShim
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// A job's shared-memory segment: a header every kind shares (participants, a cancel flag, a start
/// barrier), one record per participant (progress, timing) and an area of the kind's own. The
/// daemon takes it from its `JobSegmentPool` (a new one, or a free one reused) and fills it before
/// dispatching; workers attach it by its id (`JobSegmentMappings`) and read it. The header and the
/// records are `pool_job_header` and `pool_job_participant` (PooldLayouts.h).
public final class JobSegment: Sendable {
    public let segment: SharedSegment
    /// What workers attach it by: the id of the job it was made for, whose name (`IPCNames.job`)
    /// it keeps while it is reused. A name is made once (O_EXCL) and job ids are not handed out
    /// twice, so an id never names another object: a mapping a worker keeps by id cannot be stale.
    public let id: Int
    public let participants: Int
    /// Where the kind's own area starts.
    public let kindAreaOffset: Int

    static let magic: UInt32 = POOL_JOB_MAGIC
    static let headerSize = MemoryLayout<pool_job_header>.size
    static let participantSize = MemoryLayout<pool_job_participant>.stride

    /// One participant's record.
    public struct Participant: @unchecked Sendable {
        // @unchecked: atomics over shared memory.
        let record: UnsafeMutablePointer<pool_job_participant>

        /// Operations or items done so far: read by the daemon for progress.
        public var done: UnsafeAtomic<Int64> { record.atomic(\.done) }
        public var startedNanos: UnsafeAtomic<Int64> { record.atomic(\.startedNanos) }
        public var finishedNanos: UnsafeAtomic<Int64> { record.atomic(\.finishedNanos) }
        public var pid: UnsafeAtomic<Int64> { record.atomic(\.pid) }
        public var slot: UnsafeAtomic<Int64> { record.atomic(\.slot) }
        /// Kind-specific counters (lock recoveries for the counter job).
        public var extra: UnsafeAtomic<Int64> { record.atomic(\.extra) }
        /// When this participant last spun at the start gate: fresh while it runs there.
        var gateStamp: UnsafeAtomic<Int64> { record.atomic(\.gateStamp) }
    }

    /// What a job needs of its segment: the header's kind and participants, and its kind area.
    struct Shape {
        let kind: UInt32
        let participants: Int
        let kindAreaSize: Int

        /// The bytes the job lays out.
        var bytes: Int { JobSegment.layout(participants: participants, kindAreaSize: kindAreaSize).size }
        /// What the segment occupies (tmpfs allocates whole pages): its size class in the pool.
        var pageBytes: Int { SharedMemorySpace.pages(bytes) }
    }

    static func layout(participants: Int, kindAreaSize: Int) -> (size: Int, kindAreaOffset: Int) {
        var layout = SegmentLayout()
        _ = layout.reserveBytes(headerSize)
        _ = layout.reserveBytes(participantSize * participants)
        let kindArea = layout.reserveBytes(max(kindAreaSize, 1))
        return (layout.size, kindArea)
    }

    /// Lays a job of `shape` out on `mapping` (at least `shape.bytes` long): a new segment, which
    /// the kernel zero-filled, or a reused one (`zeroing`), cleared first, since every layout
    /// assumes a zeroed segment (a futex word, a cancel flag or a count left over would be read as
    /// this job's). The header is written fresh, its magic last. (The magic, which workers read
    /// atomically even between jobs, is only ever stored atomically: the clearing starts after it.)
    static func prepare(_ mapping: SharedSegment, id: Int, for shape: Shape, zeroing: Bool) -> JobSegment {
        precondition(shape.bytes <= mapping.size, "a job of \(shape.bytes) bytes on segment \(mapping.name) of \(mapping.size)")
        if zeroing { mapping.zero(from: MemoryLayout<pool_job_header>.offset(of: \pool_job_header.kind)!) }
        let header = mapping.base.layout(pool_job_header.self)
        header.pointee.kind = shape.kind
        header.pointee.participants = UInt32(shape.participants)
        header.atomic(\.magic).store(magic, ordering: .releasing)
        let (_, kindArea) = layout(participants: shape.participants, kindAreaSize: shape.kindAreaSize)
        return JobSegment(segment: mapping, id: id, participants: shape.participants, kindAreaOffset: kindArea)
    }

    /// A worker's view of the job the daemon laid out on `mapping` (attached by `id`). The header
    /// is read each time: a reused segment carries another job's shape.
    static func attach(_ mapping: SharedSegment, id: Int) throws(IPCError) -> JobSegment {
        guard mapping.size >= headerSize, state(of: mapping) == magic else {
            throw IPCError("attach job segment \(mapping.name)", errno: EBADMSG, hint: "not a poold job segment in use")
        }
        let header = mapping.base.layout(pool_job_header.self)
        let participants = Int(header.pointee.participants)
        let (size, kindArea) = layout(participants: participants, kindAreaSize: 0)
        guard size <= mapping.size else {
            throw IPCError("attach job segment \(mapping.name)", errno: EBADMSG, hint: "\(participants) participants do not fit its \(mapping.size) bytes")
        }
        return JobSegment(segment: mapping, id: id, participants: participants, kindAreaOffset: kindArea)
    }

    private init(segment: SharedSegment, id: Int, participants: Int, kindAreaOffset: Int) {
        self.segment = segment
        self.id = id
        self.participants = participants
        self.kindAreaOffset = kindAreaOffset
    }

    /// The header's magic: POOL_JOB_MAGIC while a job uses the segment, POOL_JOB_FREE_MAGIC while
    /// the daemon keeps it for the next, POOL_JOB_RETIRED_MAGIC once it was discarded.
    static func state(of mapping: SharedSegment) -> UInt32 {
        mapping.base.layout(pool_job_header.self).atomic(\.magic).load(ordering: .acquiring)
    }

    /// Marks the segment `POOL_JOB_FREE_MAGIC` or `POOL_JOB_RETIRED_MAGIC` (see `state(of:)`).
    static func mark(_ mapping: SharedSegment, _ state: UInt32) {
        mapping.base.layout(pool_job_header.self).atomic(\.magic).store(state, ordering: .releasing)
    }

    private var header: UnsafeMutablePointer<pool_job_header> { segment.base.layout(pool_job_header.self) }

    public var kind: UInt32 { header.pointee.kind }

    /// Set by the daemon to stop the job; workers check it between chunks of work.
    public var cancelFlag: UnsafeAtomic<UInt32> { header.atomic(\.cancel) }

    /// Counts participants that reached the start line; the futex the barrier sleeps on.
    public var barrier: FutexWord { FutexWord(header.field(\.barrier)) }

    public var isCancelled: Bool { cancelFlag.load(ordering: .relaxed) != 0 }

    public func cancel() {
        cancelFlag.store(1, ordering: .releasing)
        // Anyone asleep at the start barrier or in `pause` must see the flag now.
        barrier.wake()
        cancelWord.wake()
    }

    private var cancelWord: FutexWord { FutexWord(header.field(\.cancel)) }

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
        return Participant(record: header.end.layout(pool_job_participant.self) + index)
    }

    public var kindArea: UnsafeMutableRawPointer { segment.base + kindAreaOffset }

    /// Initialises a robust mutex field of the kind area while the job is set up (on failure the
    /// job cannot run, and the scheduler discards the segment).
    public func initializeMutex(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) throws(IPCError) {
        try RobustMutex(mutex).initialize()
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
    var runningCount: UnsafeAtomic<UInt32> { header.atomic(\.running) }

    /// Set once every participant was seen running at the start gate: they leave it together.
    var goFlag: UnsafeAtomic<UInt32> { header.atomic(\.go) }

    /// How long an arriving participant spins before it sleeps.
    static let arrivalSpin: Int64 = 200_000
    /// How long a released participant spins at most, waiting for the others to run.
    static let runningSpinLimit: Int64 = 50_000_000
    /// A stamp this recent says its participant is on a CPU now (a spin round takes well under a
    /// microsecond; a descheduled one stops stamping for a time slice, milliseconds).
    static let freshStamp: Int64 = 20_000
    static let onlineCPUs = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
