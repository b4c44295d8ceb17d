import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A process-shared, robust pthread mutex living in shared memory: the notebook's Lock, across
/// processes. When its holder dies, the next locker is told (EOWNERDEAD) and makes it consistent.
public struct RobustMutex: @unchecked Sendable {
    // @unchecked: the pointer targets shared memory that the pthread mutex itself synchronises.
    public let raw: UnsafeMutablePointer<pthread_mutex_t>

    /// Bytes to reserve for one mutex in a segment layout.
    public static var size: Int { pool_mutex_size() }

    public enum Acquisition: Sendable, Equatable {
        case acquired
        /// The previous holder died holding it; the lock is now held and was made consistent. Data it
        /// protects may be half-updated: the caller repairs it before unlocking.
        case recoveredFromDeadOwner
    }

    public init(at raw: UnsafeMutableRawPointer) {
        self.raw = raw.assumingMemoryBound(to: pthread_mutex_t.self)
    }

    /// The mutex field of a layout (see `UnsafeMutablePointer.field(_:)`).
    public init(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        self.raw = mutex
    }

    /// Initialises the mutex in place; done once, by the creator of the segment.
    public func initialize() throws(IPCError) {
        let rc = pool_robust_mutex_init(raw)
        guard rc == 0 else { throw IPCError("pthread_mutex_init(robust, pshared)", errno: rc) }
    }

    /// Takes the mutex; the one way poold does. A mutex that cannot be made consistent is not
    /// left held: the next lockers then fail with ENOTRECOVERABLE instead of waiting forever.
    @inlinable
    public func lock() throws(IPCError) -> Acquisition {
        let rc = pthread_mutex_lock(raw)
        if rc == 0 { return .acquired }
        if rc == EOWNERDEAD {
            let consistent = pool_mutex_consistent(raw)
            guard consistent == 0 else {
                pthread_mutex_unlock(raw)
                throw IPCError("pthread_mutex_consistent", errno: consistent)
            }
            return .recoveredFromDeadOwner
        }
        throw IPCError("pthread_mutex_lock", errno: rc)
    }

    @inlinable
    public func unlock() {
        _ = pthread_mutex_unlock(raw)
    }
}
