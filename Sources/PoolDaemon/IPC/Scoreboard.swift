import Atomics
import CPooldShim
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The pool's shared-memory scoreboard: one cache-line record per slot that its worker keeps
/// current (pid, job, heartbeat), readable by the daemon at any time without a message (the
/// heartbeat check) and by a later instance after a crash (whose workers and jobs to clean up).
/// The daemon's own state machine stays authoritative for a slot's state, the job's segment for
/// its progress; the scoreboard is what a worker says about itself.
///
/// The scoreboard also tells a live instance from a dead one: its creator holds an exclusive
/// `flock` on it for as long as it lives (the kernel drops the lock when the process dies, however
/// it dies) and, once it holds the lock, stamps the header with a magic number, its pid and the
/// capacity. `StaleInstanceCleaner` relies on both. The header and the records are
/// `pool_scoreboard_header` and `pool_scoreboard_record` (PooldLayouts.h).
public final class Scoreboard: Sendable {
    public let segment: SharedSegment
    public let capacity: Int
    /// The descriptor that holds the instance's lock (the creator's only; -1 for workers). Never
    /// closed: the lock must last as long as the process.
    let lockDescriptor: Int32

    /// Fields of one slot record, each an atomic in shared memory.
    public struct Record: @unchecked Sendable {
        // @unchecked: atomics over shared memory.
        let record: UnsafeMutablePointer<pool_scoreboard_record>

        public var pid: UnsafeAtomic<Int32> { record.atomic(\.pid) }
        public var jobID: UnsafeAtomic<UInt64> { record.atomic(\.jobID) }
        /// CLOCK_MONOTONIC nanoseconds of the worker's last sign of life.
        public var heartbeat: UnsafeAtomic<Int64> { record.atomic(\.heartbeat) }

        public func beat() { heartbeat.store(MonotonicClock.nanoseconds, ordering: .relaxed) }

        /// Beats every 256 calls (a clock read): a hot loop that never waits never reaches the
        /// heartbeats of its slow path, and a long busy run must not be taken for a hang.
        @inline(__always)
        func beat(every calls: inout Int) {
            calls &+= 1
            if calls & 255 == 0 { beat() }
        }
    }

    static let recordSize = MemoryLayout<pool_scoreboard_record>.stride

    /// The header: written once by the creator, after it took the lock. Its magic is written last:
    /// the header is complete (and the lock was taken) once it is there.
    enum Header {
        static let size = MemoryLayout<pool_scoreboard_header>.size
        static let magic = POOL_SCOREBOARD_MAGIC
        static let version = POOL_SCOREBOARD_VERSION
    }

    /// Creates the scoreboard for up to `capacity` slots, takes the instance's lock on it and
    /// stamps the header. Fails with EEXIST when the name exists (another instance, live or dead,
    /// has this prefix).
    public static func create(name: String, capacity: Int) throws(IPCError) -> Scoreboard {
        let segment = try SharedSegment.create(name: name, size: Header.size + capacity * recordSize)
        // A descriptor of its own for the lock (the segment's was closed once mapped). Close-on-exec,
        // and workers are spawned with every descriptor above stderr closed, so only this process
        // ever holds it: the lock goes exactly when the daemon goes.
        let lock = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard lock >= 0 else {
            let error = IPCError("shm_open(\(name)) for its lock")
            SharedSegment.unlink(name: name)
            throw error
        }
        // Blocking: the segment is brand new, so the only possible holder is another instance
        // looking at it, which finds no magic yet and lets go at once.
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let error = IPCError("flock(\(name))")
                close(lock)
                SharedSegment.unlink(name: name)
                throw error
            }
        }
        let header = segment.base.layout(pool_scoreboard_header.self)
        header.pointee.version = Header.version
        header.pointee.pid = getpid()
        header.pointee.capacity = UInt32(capacity)
        header.atomic(\.magic).store(Header.magic, ordering: .releasing)
        return Scoreboard(segment: segment, capacity: capacity, lockDescriptor: lock)
    }

    /// Maps the scoreboard a worker's daemon made, once its header says it is one of this build's:
    /// a segment of another kind or layout is refused, not misread.
    public static func open(name: String) throws(IPCError) -> Scoreboard {
        let segment = try SharedSegment.open(name: name)
        guard segment.size >= Header.size else {
            throw IPCError("open scoreboard \(name)", errno: EBADMSG,
                           hint: "it is \(segment.size) bytes, smaller than a scoreboard's \(Header.size)-byte header: not a poold scoreboard")
        }
        let header = segment.base.layout(pool_scoreboard_header.self)
        let magic = header.atomic(\.magic).load(ordering: .acquiring)
        guard magic == Header.magic else {
            throw IPCError("open scoreboard \(name)", errno: EBADMSG,
                           hint: "its magic number is \(hex(magic)), expected \(hex(Header.magic)): not a poold scoreboard, or one whose daemon has not finished making it")
        }
        let version = header.pointee.version
        guard version == Header.version else {
            throw IPCError("open scoreboard \(name)", errno: EBADMSG,
                           hint: "its layout version is \(version), expected \(Header.version): it was made by another poold build; a worker must run its daemon's own binary")
        }
        let capacity = Int(header.pointee.capacity)
        guard Header.size + capacity * recordSize <= segment.size else {
            throw IPCError("open scoreboard \(name)", errno: EBADMSG,
                           hint: "its header says \(capacity) slots, but its \(segment.size) bytes hold \((segment.size - Header.size) / recordSize)")
        }
        return Scoreboard(segment: segment, capacity: capacity, lockDescriptor: -1)
    }

    private static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16, uppercase: true) }

    private init(segment: SharedSegment, capacity: Int, lockDescriptor: Int32) {
        self.segment = segment
        self.capacity = capacity
        self.lockDescriptor = lockDescriptor
    }

    public func record(slot: Int) -> Record {
        precondition(slot >= 0 && slot < capacity, "slot \(slot) outside the scoreboard")
        return Record(record: records + slot)
    }

    private var records: UnsafeMutablePointer<pool_scoreboard_record> {
        segment.base.layout(pool_scoreboard_header.self).end.layout(pool_scoreboard_record.self)
    }

    /// Clears a record before a new worker takes the slot.
    public func reset(slot: Int) {
        precondition(slot >= 0 && slot < capacity, "slot \(slot) outside the scoreboard")
        (records + slot).pointee = pool_scoreboard_record()
    }
}
