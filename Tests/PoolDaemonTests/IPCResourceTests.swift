import Foundation
import PoolIPC
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's IPC resources running short: a small /dev/shm, a low queues_max, RLIMIT_MSGQUEUE.
/// Each test runs the real daemon in a private IPC namespace whose limits it sets (other daemons on
/// this machine share the host's), and asserts that what cannot fit is refused with the limit named,
/// that the daemon keeps serving, and that it leaves nothing behind on any path.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct IPCResourceTests {
    private func run(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue], detach: Bool = false) throws -> VarlinkReply<JSONValue> {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: detach))
    }

    private func submit(_ daemon: DaemonHarness, _ kind: String, _ parameters: [String: JSONValue]) throws -> JobRecord {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: true),
                                 returning: JobReply.self).job
    }

    private func expectExactProdCons(_ daemon: DaemonHarness, items: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try daemon.poolctl("--json", "run", "prodcons", "--items", "\(items)")
        #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
        guard run.status == 0 else { return }
        let job = try run.json(JobRecord.self)
        #expect(job.state == .succeeded && job.result?["checksumOK"] == .bool(true), "\(job)", sourceLocation: sourceLocation)
    }

    private func reason(_ reply: VarlinkReply<JSONValue>) -> String { reply.parameters?["reason"]?.stringValue ?? "" }

    // MARK: Whatever a daemon creates, it removes

    @Test func aCleanStopRemovesEveryQueueAlsoWhenQueuesMaxLeftSlotsFailed() throws {
        // Room for the event queue only: no worker can have a command queue, every slot fails.
        let namespace = try IPCNamespace(queueLimits: ["queues_max": 1])
        defer { namespace.close() }
        let daemon = try DaemonHarness.start(workers: 2, namespace: namespace)
        defer { try? daemon.stop() }
        let status = try daemon.waitForStatus { $0.workers.count == 2 && $0.workers.allSatisfy { $0.state == .failed } }
        #expect(status.workers.allSatisfy { $0.lastExit?.contains("queues_max") == true }, "\(status.workers)")
        try daemon.stop()
        #expect(namespace.objects == [])
    }

    @Test func aStartThatFailsHalfWayLeavesNothing() throws {
        // Twelve descriptors: enough for the history and the first IPC objects, not for the event loop.
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let failed = try runProgram("/usr/bin/prlimit", ["--nofile=12:12", "--", "/usr/bin/nsenter"] + namespace.enterArguments + [
            Binaries.poold, "--socket", directory.path + "/poold.sock", "--workers", "2", "--ipc-prefix", "/poold-halfway",
            "--log-target", "stderr", "--state-dir", directory.path + "/state"])
        #expect(failed.status != 0)
        #expect(namespace.objects == [], "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/poold.sock"))
    }

    @Test func theSweepRemovesAnInstanceThatDiedBeforeItsScoreboardHadAHeader() throws {
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        // What a poold killed between creating its scoreboard and stamping it leaves: an empty
        // scoreboard (and, had it got further, objects beside it).
        let dead = ["shm:poold-halfdead.job3", "shm:poold-halfdead.scoreboard", "mqueue:poold-halfdead.events", "mqueue:poold-halfdead.slot0.commands"]
        try namespace.createSharedMemory("poold-halfdead.scoreboard", size: 0)
        try namespace.createSharedMemory("poold-halfdead.job3")
        try namespace.createQueue("poold-halfdead.events")
        try namespace.createQueue("poold-halfdead.slot0.commands")
        #expect(namespace.objects == dead.sorted())
        // A scoreboard without a header may be one being created this instant: it is judged dead
        // only once older than that takes (5 s). Nothing signals its ageing; this waits it out.
        Thread.sleep(forTimeInterval: 5.5)
        let daemon = try DaemonHarness.start(workers: 1, namespace: namespace)
        defer { try? daemon.stop() }
        #expect(namespace.objects == daemon.ipcObjects, "left: \(namespace.objects)")
        let removal = daemon.log.split(separator: "\n").first { $0.contains("removed the IPC objects of a dead poold instance") }
        #expect(removal?.contains("ipcPrefix=/poold-halfdead") == true && removal?.contains("count=4") == true, "\(String(describing: removal))")
        try daemon.stop()
        #expect(namespace.objects == [])
    }
}
