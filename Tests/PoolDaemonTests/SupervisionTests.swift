import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(3)))
struct SupervisionTests {
    @Test func aKilledWorkerIsRespawnedAndThePoolRecovers() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let before = try daemon.status()
        let victim = try #require(before.workers.first { $0.slot == 0 })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)

        let after = try daemon.waitForStatus { status in
            status.workers.count == 2 && status.workers.allSatisfy { $0.state == .ready }
                && status.workers.first { $0.slot == 0 }!.pid != victim.pid
        }
        let slot0 = try #require(after.workers.first { $0.slot == 0 })
        #expect(slot0.restarts == 1)
        #expect(slot0.lastExit?.contains("signal 9") == true, "\(String(describing: slot0.lastExit))")
        // And the respawned worker does real work.
        let run = try daemon.poolctl("run", "counter", "--mode", "atomic", "--iterations", "1000")
        #expect(run.status == 0, "\(run.stderr)")
        try daemon.stop()
    }

    @Test func resizeGrowsAndShrinksThePool() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let grow = try daemon.poolctl("pool", "resize", "4")
        #expect(grow.status == 0, "\(grow.stderr)")
        let grown = try daemon.waitForStatus { $0.workers.count == 4 && $0.workers.allSatisfy { $0.state == .ready } }
        #expect(grown.poolSize == 4)

        let shrink = try daemon.poolctl("--json", "pool", "resize", "1")
        #expect(shrink.status == 0, "\(shrink.stderr)")
        let shrunk = try daemon.waitForStatus { $0.workers.count == 1 && $0.workers[0].state == .ready }
        #expect(shrunk.poolSize == 1 && shrunk.workers[0].slot == 0)
        for removed in grown.workers where removed.slot > 0 {
            #expect(kill(Int32(removed.pid), 0) == -1, "worker \(removed.pid) of a removed slot still runs")
        }
        #expect(IPCObjects.named(withPrefix: daemon.prefix + ".slot1").isEmpty, "a removed slot's queue is unlinked")

        let bad = try daemon.poolctl("pool", "resize", "0")
        #expect(bad.status == 4 && bad.stderr.contains("workers"), "\(bad.stderr)")
        try daemon.stop()
    }
}
