import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("RobustMutex")
struct RobustMutexTests {
    @Test("a lock held by a process killed with SIGKILL is recovered by the next locker")
    func recoversFromDeadOwner() throws {
        var layout = SegmentLayout()
        let mutexOffset = layout.reserveBytes(RobustMutex.size)
        let name = TestNames.unique("mutex")
        let segment = try SharedSegment.create(name: name, size: layout.size)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        let mutex = RobustMutex(at: segment.base + mutexOffset)
        try mutex.initialize()
        #expect(try mutex.lock() == .acquired, "an initialised mutex is free")
        mutex.unlock()

        let probe = try Probe("hold-lock", name, "\(mutexOffset)")
        let handshake = try probe.readLine()
        try #require(handshake == "locked", "ipc-probe said \(handshake ?? "nothing"); stderr: \(probe.standardError())")
        probe.send(signal: SIGKILL)
        #expect(try probe.waitForExit() == .signalled(SIGKILL))

        #expect(try mutex.lock() == .recoveredFromDeadOwner)
        mutex.unlock()
        #expect(try mutex.lock() == .acquired, "the recovered mutex was made consistent")
        mutex.unlock()
    }
}
