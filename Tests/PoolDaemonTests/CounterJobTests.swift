import Foundation
import PoolProtocol
import Testing

/// The notebook's counter cells, end to end: real poold, real workers, real poolctl.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct CounterJobTests {
    private func runCounter(_ daemon: DaemonHarness, mode: String, iterations: Int) throws -> (CommandResult, JobRecord, CounterResult) {
        let run = try daemon.poolctl(arguments: ["--json", "run", "counter", "--mode", mode, "--workers", "2",
                                                 "--iterations", "\(iterations)", "--start", "10", "--split"])
        let job = try run.json(JobRecord.self)
        let result = try #require(job.result).decode(CounterResult.self)
        return (run, job, result)
    }

    @Test func unsafeModeLosesUpdates() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (run, job, result) = try runCounter(daemon, mode: "unsafe", iterations: 20_000_000)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.kind == "counter" && job.state == .succeeded)
        #expect(result.expected == 9)
        #expect(result.lost > 0, "two workers racing over 40M separate loads and stores must lose updates")
        #expect(result.lost == abs(result.expected - result.actual))
        #expect(result.operations == 40_000_001)
        #expect(result.workers.map(\.operations).sorted() == [20_000_000, 20_000_001])
        try daemon.stop()
    }

    @Test(arguments: ["locked", "atomic"])
    func exactModesLoseNothing(mode: String) throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (run, job, result) = try runCounter(daemon, mode: mode, iterations: 1_000_000)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(job.state == .succeeded)
        #expect(result.actual == 9 && result.expected == 9 && result.lost == 0)
        #expect(result.opsPerSecond > 0)
        #expect(Set(result.workers.map(\.slot)).count == 2, "the two halves ran on two different workers")
        try daemon.stop()
    }

    @Test func humanOutputShowsTheNotebooksLine() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("run", "counter", "--mode", "locked", "--iterations", "10000")
        #expect(run.status == 0)
        #expect(run.stdout.contains("counter = 9"), "\(run.stdout)")
        let listed = try daemon.poolctl("jobs")
        #expect(listed.stdout.contains("counter") && listed.stdout.contains("succeeded"), "\(listed.stdout)")
        try daemon.stop()
    }
}
