import Atomics
import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A 32-bit word in shared memory that processes wait on and wake each other through (futex(2)):
/// the building block for barriers and the notebook's Event.
public struct FutexWord: @unchecked Sendable {
    // @unchecked: all access goes through atomics and the futex syscall.
    public let raw: UnsafeMutablePointer<UInt32>

    public init(at raw: UnsafeMutableRawPointer) {
        self.raw = raw.assumingMemoryBound(to: UInt32.self)
    }

    /// A futex word field of a layout (see `UnsafeMutablePointer.field(_:)`).
    public init(_ word: UnsafeMutablePointer<UInt32>) {
        self.raw = word
    }

    @inlinable
    public var atomic: UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(raw).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    public enum WaitOutcome: Sendable { case changed, timedOut }

    /// Waits while the word equals `expected`, at most `timeoutNanos` (nil: without limit).
    public func wait(whileEqualTo expected: UInt32, timeoutNanos: Int64? = nil) -> WaitOutcome {
        while true {
            let rc = pool_futex_wait(raw, expected, timeoutNanos ?? -1)
            switch rc {
            case 0: return .changed
            case ETIMEDOUT: return .timedOut
            case EINTR:
                // Re-check the word; a relative timeout restarts, which errs on the long side.
                if atomic.load(ordering: .acquiring) != expected { return .changed }
            default:
                // A permanent error (EFAULT, EINVAL) would fail again at once: retrying would spin.
                // Callers re-check the word and their deadlines, so report a wake-up.
                return .changed
            }
        }
    }

    /// Wakes up to `count` waiters (Int32.max: all).
    @discardableResult
    public func wake(_ count: Int32 = Int32.max) -> Int {
        Int(pool_futex_wake(raw, count))
    }
}
