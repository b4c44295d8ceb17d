import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon keeps a Status reply's text (and a repeated call's parse) from one call to the next;
/// whatever changes in the pool must show in the very next Status on the same connection, which
/// is how a monitor polls it.
struct StatusReplyTests {
    /// Status on `client`, checked to be exactly the JSON Foundation writes for the status it
    /// decodes to (no member missing, added or spelled otherwise), and no `continues`.
    private static func status(_ client: VarlinkClient, sourceLocation: SourceLocation = #_sourceLocation) throws -> StatusReply {
        let reply = try client.call(PoolInterface.Method.status.qualifiedName)
        #expect(reply.error == nil && reply.continues == nil, "\(reply)", sourceLocation: sourceLocation)
        let parameters = try #require(reply.parameters, sourceLocation: sourceLocation)
        let status = try parameters.decode(StatusReply.self)
        let encoded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(status))
        #expect(parameters == encoded, "\(parameters) is not the status's JSON \(encoded)", sourceLocation: sourceLocation)
        return status
    }

    private static func run(_ daemon: DaemonHarness, workers: Int) throws -> JobRecord {
        let run = try daemon.poolctl(arguments: ["--json", "run", "counter", "--detach", "--mode", "atomic", "--workers", "\(workers)",
                                                 "--no-split", "--iterations", "10000000000"])
        #expect(run.status == 0, "\(run.stderr)")
        return try run.json(JobRecord.self)
    }

    @Test func aKeptConnectionSeesEveryChangeInTheNextStatus() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        _ = try daemon.waitForStatus { $0.workers.count == 2 && $0.workers.allSatisfy { $0.state == .ready } }
        let client = try daemon.client()
        let idle = try Self.status(client)
        #expect(idle.jobsRunning == 0 && idle.jobsQueued == 0 && idle.runningJobs == nil && idle.poolSize == 2)
        let again = try Self.status(client)
        #expect(again.uptimeSeconds > idle.uptimeSeconds, "the uptime moves on in a reply otherwise the same")

        // A job running on both workers, a second one queued behind it.
        let first = try Self.run(daemon, workers: 2)
        #expect(first.state == .running)
        let running = try Self.status(client)
        #expect(running.jobsRunning == 1 && running.runningJobs?.map(\.id) == [first.id], "\(running)")
        #expect(running.workers.allSatisfy { $0.state == .busy && $0.job == first.id }, "\(running.workers)")
        let second = try Self.run(daemon, workers: 1)
        #expect(second.state == .queued)
        let queued = try Self.status(client)
        #expect(queued.jobsQueued == 1 && queued.jobsRunning == 1, "\(queued)")

        // The first cancelled: the second runs; cancelled too: both finished, nothing runs.
        #expect(try daemon.poolctl("cancel", "\(first.id)").status == 0)
        #expect(try daemon.waitForJob(first.id).state == .cancelled)
        _ = try daemon.waitForStatus { $0.runningJobs?.map(\.id) == [second.id] }
        let secondRunning = try Self.status(client)
        #expect(secondRunning.jobsQueued == 0 && secondRunning.runningJobs?.map(\.id) == [second.id] && secondRunning.jobsFinished == 1,
                "\(secondRunning)")
        #expect(try daemon.poolctl("cancel", "\(second.id)").status == 0)
        #expect(try daemon.waitForJob(second.id).state == .cancelled)
        let finished = try Self.status(client)
        #expect(finished.jobsRunning == 0 && finished.runningJobs == nil && finished.jobsFinished == 2, "\(finished)")

        // A resize shows in the next reply.
        let resized = try client.call(PoolInterface.Method.resize.qualifiedName, ResizeRequest(workers: 3), returning: ResizeReply.self)
        #expect(resized.poolSize == 3)
        let grown = try Self.status(client)
        #expect(grown.poolSize == 3 && grown.workers.count == 3, "\(grown)")

        // A worker killed: its death and its restart, as a follower sees them, and the next Status.
        _ = try daemon.waitForStatus { $0.workers.count == 3 && $0.workers.allSatisfy { $0.state == .ready } }
        let victim = try #require(try Self.status(client).workers.first)
        kill(Int32(victim.pid), SIGKILL)
        let restarted = try daemon.waitForStatus { status in
            status.workers.contains { $0.slot == victim.slot && $0.restarts == victim.restarts + 1 && $0.state == .ready }
        }
        let afterDeath = try Self.status(client)
        let slot = try #require(afterDeath.workers.first { $0.slot == victim.slot })
        #expect(slot.restarts == victim.restarts + 1 && slot.pid != victim.pid && slot.lastExit != nil, "\(afterDeath.workers)")
        #expect(afterDeath.workers == restarted.workers, "what a follower was pushed is what the next call gets")
        try daemon.stop()
    }

    /// A follower gets the same text as a caller, with `continues`, on every change.
    @Test func aFollowerIsPushedEachChange() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        _ = try daemon.waitForStatus { $0.workers.first?.state == .ready }
        let follower = try daemon.client()
        var pushes: [StatusReply] = []
        var submitted: JobRecord?
        try follower.stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
            #expect(reply.continues == true, "\(reply)")
            let parameters = try #require(reply.parameters)
            let status = try parameters.decode(StatusReply.self)
            #expect(parameters == (try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(status))))
            pushes.append(status)
            if submitted == nil { submitted = try Self.run(daemon, workers: 1) }
            return status.runningJobs?.first?.id != submitted?.id
        }
        #expect(pushes.count >= 2 && pushes.first?.jobsRunning == 0 && pushes.last?.jobsRunning == 1)
        if let submitted { _ = try daemon.poolctl("cancel", "\(submitted.id)") }
        try daemon.stop()
    }
}
