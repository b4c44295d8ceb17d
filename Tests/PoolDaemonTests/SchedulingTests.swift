import Foundation
import PoolProtocol
import Testing

@Suite(.serialized, .timeLimit(.minutes(3)))
struct SchedulingTests {
    private func detach(_ daemon: DaemonHarness, _ arguments: [String]) throws -> JobRecord {
        let run = try daemon.poolctl(arguments: ["--json", "run", "counter", "--detach"] + arguments)
        #expect(run.status == 0, "\(run.stderr)")
        return try run.json(JobRecord.self)
    }

    /// Submits a counter job detached, straight over the socket (microseconds apart, unlike poolctl).
    private func submit(_ daemon: DaemonHarness, _ parameters: [String: JSONValue]) throws -> JobRecord {
        let request = RunRequest(kind: "counter", parameters: .object(parameters), detach: true)
        return try daemon.client().call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job
    }

    @Test func twoJobsRunAtOnceOnDisjointWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 4)
        defer { try? daemon.stop() }
        // Each takes well over the few microseconds between the two submissions.
        let long: [String: JSONValue] = ["mode": .string("locked"), "workers": .number(2), "iterations": .number(3_000_000)]
        let first = try submit(daemon, long)
        let second = try submit(daemon, long)
        #expect(first.state == .running && second.state == .running)
        #expect(Set(first.slots).isDisjoint(with: second.slots))

        let firstDone = try daemon.waitForJob(first.id)
        let secondDone = try daemon.waitForJob(second.id)
        for job in [firstDone, secondDone] {
            #expect(job.state == .succeeded)
            let result = try #require(job.result).decode(CounterResult.self)
            #expect(result.actual == 9 && result.lost == 0)
        }
        try daemon.stop()
    }

    @Test func queuedJobsWaitTheirTurnInOrder() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // The first job holds both workers until it is cancelled.
        let first = try detach(daemon, ["--mode", "atomic", "--iterations", "10000000000"])
        let second = try detach(daemon, ["--mode", "atomic", "--iterations", "1000"])
        let third = try detach(daemon, ["--mode", "atomic", "--iterations", "1000"])
        #expect(first.state == .running)
        #expect(second.state == .queued && third.state == .queued)
        #expect(try daemon.status().jobsQueued == 2)

        #expect(try daemon.poolctl("cancel", "\(first.id)").status == 0)
        #expect(try daemon.waitForJob(first.id).state == .cancelled)
        let done = try [second, third].map { try daemon.waitForJob($0.id) }
        #expect(done.allSatisfy { $0.state == .succeeded })
        let starts = done.compactMap(\.startedAt)
        #expect(starts.count == 2 && starts == starts.sorted(), "FIFO: the queued jobs started in submission order")
        try daemon.stop()
    }

    @Test func cancelStopsARunningJobAndFreesItsWorkers() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let job = try detach(daemon, ["--mode", "atomic", "--iterations", "10000000000"])
        #expect(job.state == .running)

        let cancel = try daemon.poolctl("--json", "cancel", "\(job.id)")
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .cancelled)
        #expect(final.error?.contains("cancelled") == true)
        let result = try #require(final.result).decode(CounterResult.self)
        #expect(result.operations > 0 && result.operations < 20_000_000_000)
        #expect(result.actual == result.expected, "atomic updates stay exact up to the cancellation")
        #expect(IPCObjects.named(withPrefix: daemon.prefix + ".job").isEmpty, "the job's segment is gone")

        let status = try daemon.waitForStatus { $0.workers.allSatisfy { $0.state == .ready } }
        #expect(status.workers.count == 2)
        let shown = try daemon.poolctl("job", "\(job.id)")
        #expect(shown.status == 0 && shown.stdout.contains("cancelled"))
        let waited = try daemon.poolctl("job", "\(job.id)", "--wait")
        #expect(waited.status == 1, "waiting on a cancelled job exits 1")
        try daemon.stop()
    }

    @Test func aCancelledProdConsAccountsForItsItemsWithoutCallingItAMismatch() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let started = try daemon.poolctl("--json", "run", "prodcons", "--detach", "--items", "1000000000")
        #expect(started.status == 0, "\(started.stderr)")
        let job = try started.json(JobRecord.self)
        try daemon.waitForProgress(job: job.id, atLeast: 1)
        #expect(try daemon.poolctl("cancel", "\(job.id)").status == 0)

        let final = try daemon.waitForJob(job.id)
        #expect(final.state == .cancelled)
        let result = try #require(final.result)
        let produced = try #require(result["produced"]?.intValue), consumed = try #require(result["consumed"]?.intValue)
        #expect(consumed > 0 && consumed <= produced && produced < 1_000_000_000, "\(result)")
        #expect(result["checksumOK"] == .bool(false), "an incomplete run is not a verified one")
        let shown = try daemon.poolctl("job", "\(job.id)")
        #expect(shown.stdout.contains("incomplete: \(consumed) of 1000000000 consumed, \(produced - consumed) produced but not consumed"),
                "\(shown.stdout)")
        #expect(!shown.stdout.contains("MISMATCH"), "\(shown.stdout)")
        try daemon.stop()
    }

    @Test func aJobLargerThanThePoolIsRefused() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("run", "counter", "--workers", "4")
        #expect(run.status == 4)
        #expect(run.stderr.contains("PoolTooSmall") && run.stderr.contains("pool resize"), "\(run.stderr)")
        try daemon.stop()
    }
}
