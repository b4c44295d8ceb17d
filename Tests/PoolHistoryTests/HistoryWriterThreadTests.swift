import CPooldShim
import Dispatch
@testable import PoolHistory
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The history's thread: SCHED_IDLE for the batches nobody waits for, raised to SCHED_OTHER at
/// nice 19 for work someone waits for (a detached Run's acknowledgement, the stop's last write).
@Suite struct HistoryWriterThreadTests {
    /// SCHED_IDLE and SCHED_OTHER (linux/sched.h; Glibc shows SCHED_IDLE only with _GNU_SOURCE).
    static let idle: Int32 = 5, other: Int32 = 0

    private func policyAndNice(_ writer: HistoryWriterThread, urgently: Bool) -> (policy: Int32, nice: Int32) {
        let seen = Mutex<(Int32, Int32)>((-1, -1))
        let done = DispatchSemaphore(value: 0)
        let look: @Sendable () -> Void = {
            seen.withLock { $0 = (sched_getscheduler(0), getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pool_gettid()))) }
            done.signal()
        }
        if urgently { writer.urgently(look) } else { writer.async(look) }
        done.wait()
        return seen.withLock { $0 }
    }

    @Test func batchesRunIdleAndWorkSomeoneWaitsForAtNice19() {
        let writer = HistoryWriterThread(name: "poold-test")
        defer { writer.stop() }
        #expect(policyAndNice(writer, urgently: false) == (Self.idle, 19))
        #expect(policyAndNice(writer, urgently: true) == (Self.other, 19))
        // Back to SCHED_IDLE once the urgent work is done, before the next task runs.
        #expect(policyAndNice(writer, urgently: false) == (Self.idle, 19))
        #expect(writer.sync { sched_getscheduler(0) } == Self.other)
        #expect(policyAndNice(writer, urgently: false) == (Self.idle, 19))
    }
}
