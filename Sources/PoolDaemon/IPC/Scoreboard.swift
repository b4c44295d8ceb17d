import Atomics
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The pool's shared-memory scoreboard: one cache-line record per slot that its worker keeps
/// current (pid, state, job, heartbeat, progress), readable by the daemon at any time without a
/// message. The daemon's own state machine stays authoritative; the scoreboard is what a worker
/// says about itself.
///
/// The scoreboard also tells a live instance from a dead one: its creator holds an exclusive
/// `flock` on it for as long as it lives (the kernel drops the lock when the process dies, however
/// it dies) and, once it holds the lock, stamps the header with a magic number, its pid and the
/// capacity. `StaleInstanceCleaner` relies on both.
public final class Scoreboard: Sendable {
    public let segment: SharedSegment
    public let capacity: Int
    /// The descriptor that holds the instance's lock (the creator's only; -1 for workers). Never
    /// closed: the lock must last as long as the process.
    let lockDescriptor: Int32

    /// Fields of one slot record, each an atomic in shared memory.
    public struct Record: @unchecked Sendable {
        // @unchecked: atomics over shared memory.
        let base: UnsafeMutableRawPointer

        public var pid: UnsafeAtomic<Int32> { .init(at: (base + 0).assumingMemoryBound(to: Int32.AtomicRepresentation.self)) }
        /// A `WorkerScoreboardState` raw value.
        public var state: UnsafeAtomic<UInt32> { .init(at: (base + 4).assumingMemoryBound(to: UInt32.AtomicRepresentation.self)) }
        public var jobID: UnsafeAtomic<UInt64> { .init(at: (base + 8).assumingMemoryBound(to: UInt64.AtomicRepresentation.self)) }
        /// CLOCK_MONOTONIC nanoseconds of the worker's last sign of life.
        public var heartbeat: UnsafeAtomic<Int64> { .init(at: (base + 16).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        /// Items or operations done in the current job.
        public var progress: UnsafeAtomic<Int64> { .init(at: (base + 24).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }
        public var jobsDone: UnsafeAtomic<Int64> { .init(at: (base + 32).assumingMemoryBound(to: Int64.AtomicRepresentation.self)) }

        public func beat() { heartbeat.store(MonotonicClock.nanoseconds, ordering: .relaxed) }
    }

    public enum WorkerScoreboardState: UInt32, Sendable { case empty = 0, idle = 1, running = 2, exiting = 3 }

    static let recordSize = 64

    /// The header, the first 64 bytes: written once by the creator, after it took the lock.
    enum Header {
        static let size = 64
        /// UInt32, written last: the header is complete (and the lock was taken) once it is `magic`.
        static let magicOffset = 0
        static let versionOffset = 4
        /// Int32: the creator's pid.
        static let pidOffset = 8
        /// UInt32: slots in the scoreboard.
        static let capacityOffset = 12
        static let magic: UInt32 = 0x5053_4231  // "PSB1"
        static let version: UInt32 = 1
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
        let header = segment.base
        header.storeBytes(of: Header.version, toByteOffset: Header.versionOffset, as: UInt32.self)
        header.storeBytes(of: getpid(), toByteOffset: Header.pidOffset, as: Int32.self)
        header.storeBytes(of: UInt32(capacity), toByteOffset: Header.capacityOffset, as: UInt32.self)
        UnsafeAtomic<UInt32>(at: (header + Header.magicOffset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
            .store(Header.magic, ordering: .releasing)
        return Scoreboard(segment: segment, capacity: capacity, lockDescriptor: lock)
    }

    public static func open(name: String) throws(IPCError) -> Scoreboard {
        let segment = try SharedSegment.open(name: name)
        return Scoreboard(segment: segment, capacity: (segment.size - Header.size) / recordSize, lockDescriptor: -1)
    }

    private init(segment: SharedSegment, capacity: Int, lockDescriptor: Int32) {
        self.segment = segment
        self.capacity = capacity
        self.lockDescriptor = lockDescriptor
    }

    public func record(slot: Int) -> Record {
        precondition(slot >= 0 && slot < capacity, "slot \(slot) outside the scoreboard")
        return Record(base: segment.base + Header.size + slot * Self.recordSize)
    }

    /// Clears a record before a new worker takes the slot.
    public func reset(slot: Int) {
        (segment.base + Header.size + slot * Self.recordSize).initializeMemory(as: UInt8.self, repeating: 0, count: Self.recordSize)
    }
}
