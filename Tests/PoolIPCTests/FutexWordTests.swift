import Atomics
import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("FutexWord")
struct FutexWordTests {
    @Test("a process waiting on a word is woken by a store and wake() from another process")
    func wakesWaiterInAnotherProcess() throws {
        var layout = SegmentLayout()
        _ = layout.reserve(Int64.self)
        let wordOffset = layout.reserve(UInt32.self)
        let name = TestNames.unique("futex")
        let segment = try SharedSegment.create(name: name, size: layout.size)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        let word = FutexWord(at: segment.base + wordOffset)
        word.atomic.store(3, ordering: .releasing)

        let probe = try Probe("futex-wait", name, "\(wordOffset)", "3")
        let ready = try probe.readLine()
        try #require(ready == "waiting", "ipc-probe said \(ready ?? "nothing"); stderr: \(probe.standardError())")
        // "waiting" is written just before the futex call: make sure the probe sleeps in the kernel, so
        // that what wakes it is wake(), not a value it saw changed before it got there.
        try #require(Kernel.await(.seconds(10)) { Kernel.isBlockedInFutexWait(probe.pid) },
                     "ipc-probe never blocked in futex(FUTEX_WAIT)")

        word.atomic.store(4, ordering: .releasing)
        #expect(word.wake() == 1, "exactly one waiter, the probe, was woken")

        #expect(try probe.readLine() == "woken")
        #expect(try probe.waitForExit() == .exited(0))
    }

    @Test("wait returns at once when the word already differs")
    func waitReturnsWhenValueDiffers() throws {
        let name = TestNames.unique("futex-differs")
        let segment = try SharedSegment.create(name: name, size: 64)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        let word = FutexWord(at: segment.base)
        word.atomic.store(1, ordering: .releasing)
        #expect(word.wait(whileEqualTo: 0, timeoutNanos: 10_000_000_000) == .changed)
    }

    @Test("wait times out when nobody changes the word")
    func waitTimesOut() throws {
        let name = TestNames.unique("futex-timeout")
        let segment = try SharedSegment.create(name: name, size: 64)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        let word = FutexWord(at: segment.base)
        let start = MonotonicClock.nanoseconds
        #expect(word.wait(whileEqualTo: 0, timeoutNanos: 20_000_000) == .timedOut)
        #expect(MonotonicClock.nanoseconds - start >= 20_000_000)
        #expect(word.wake() == 0, "no waiter left behind")
    }
}
