import Atomics
import PoolIPC

/// The pool's shared-memory scoreboard: one cache-line record per slot that its worker keeps
/// current (pid, state, job, heartbeat, progress), readable by the daemon at any time without a
/// message. The daemon's own state machine stays authoritative; the scoreboard is what a worker
/// says about itself.
public final class Scoreboard: Sendable {
    public let segment: SharedSegment
    public let capacity: Int

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

    /// Creates the scoreboard for up to `capacity` slots.
    public static func create(name: String, capacity: Int) throws(IPCError) -> Scoreboard {
        Scoreboard(segment: try SharedSegment.create(name: name, size: 64 + capacity * recordSize), capacity: capacity)
    }

    public static func open(name: String) throws(IPCError) -> Scoreboard {
        let segment = try SharedSegment.open(name: name)
        return Scoreboard(segment: segment, capacity: (segment.size - 64) / recordSize)
    }

    private init(segment: SharedSegment, capacity: Int) {
        self.segment = segment
        self.capacity = capacity
    }

    public func record(slot: Int) -> Record {
        precondition(slot >= 0 && slot < capacity, "slot \(slot) outside the scoreboard")
        return Record(base: segment.base + 64 + slot * Self.recordSize)
    }

    /// Clears a record before a new worker takes the slot.
    public func reset(slot: Int) {
        (segment.base + 64 + slot * Self.recordSize).initializeMemory(as: UInt8.self, repeating: 0, count: Self.recordSize)
    }
}
