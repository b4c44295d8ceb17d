import Foundation
import PoolProtocol
import Testing
@testable import PoolDaemon

/// `job-log-rate`: the jobs above it have no lines in the log but are summed up, failures are
/// logged all the same, and a job's lines go or stay together (the daemon's and its workers').
@Suite(.timeLimit(.minutes(3)))
struct JobLogRateTests {
    private static let second: Int64 = 1_000_000_000

    @Test func theLimiterAdmitsThatManyJobsInEachSecondAndCountsTheRestUntilTheSummary() {
        var limiter = JobLogLimiter(jobsPerSecond: 2)
        let start: Int64 = 5 * Self.second
        var answers: [Bool] = []
        for offset: Int64 in [0, 1, 2, 3] { answers.append(limiter.admit(now: start + offset * 1000)) }
        #expect(answers == [true, true, false, false])
        // The second is counted from the first job of the window, not from the clock's.
        let lastNanosecond = limiter.admit(now: start + Self.second - 1), nextSecond = limiter.admit(now: start + Self.second)
        #expect(!lastNanosecond && nextSecond)

        let firsts = [limiter.noteUnlogged(.succeeded), limiter.noteUnlogged(.succeeded), limiter.noteUnlogged(.cancelled)]
        #expect(firsts == [true, false, false], "the first one since a summary schedules the next")
        let summary = limiter.takeSummary()
        #expect(summary?.count == 3)
        #expect(summary?.message == "3 jobs finished in the last second without their lines logged (1 cancelled, 2 succeeded): above "
                + "job-log-rate, 2 jobs a second, whose lines are logged; failures always are. `poolctl jobs` lists them")
        let again = limiter.takeSummary()
        #expect(again == nil, "each job is summed up once")
        let firstAfterSummary = limiter.noteUnlogged(.succeeded)
        #expect(firstAfterSummary)

        var unlimited = JobLogLimiter(jobsPerSecond: 0)
        var admitted = 0
        for _ in 0..<10_000 where unlimited.admit(now: start) { admitted += 1 }
        #expect(admitted == 10_000, "0: every job is logged")
    }

    @Test func jobsAboveTheRateAreSummedUpAndAFailureAboveItIsLoggedAllTheSame() throws {
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--job-log-rate", "1"])
        let client = try daemon.client()
        func runTask() throws -> JobRecord {
            try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: "tasks", parameters: .object(["count": .number(1), "workers": .number(1)])),
                            returning: JobReply.self).job
        }
        // Job 1 is the second's one logged job; job 2, a moment later, fails by its timeout.
        let first = try runTask()
        let failing = try client.call(PoolInterface.Method.run.qualifiedName,
                                      RunRequest(kind: "event", parameters: .object(["waiters": .number(1), "timeoutWaiters": .number(0), "setAfter": .string("10s")]),
                                                 detach: true, timeout: "300ms"),
                                      returning: JobReply.self).job
        let burst = try (0..<12).map { _ in try runTask() }
        #expect(try daemon.waitForJob(failing.id).state == .failed)
        try daemon.stop()

        let lines = daemon.log.split(separator: "\n").map(String.init)
        func has(_ prefix: String) -> Bool { lines.contains { $0.contains(prefix) } }
        #expect(has("job \(first.id) (tasks) started on slot") && has("job \(first.id) (tasks) succeeded in"), "\(daemon.log)")
        #expect(!has("job \(failing.id) (event) started on slot"), "job \(failing.id) started above the rate")
        #expect(has("job \(failing.id) (event) failed after"), "a failure is logged above the rate: \(daemon.log)")

        // Each of the burst's jobs has both lines or neither, and its worker's line with them.
        var logged = 1
        for job in burst {
            let started = has("job \(job.id) (tasks) started on slot"), ended = has("job \(job.id) (tasks) succeeded in")
            #expect(started == ended, "job \(job.id): started \(started), ended \(ended)")
            if ended { logged += 1 }
        }
        let taskLines = lines.filter { $0.contains("I'm the task 0") }.count
        #expect(taskLines == logged, "the workers' lines of \(logged) logged jobs, not of the others: \(taskLines)")
        let summaries = lines.filter { $0.contains("jobs finished in the last second without their lines logged") || $0.contains("1 job finished in the last second") }
        let summed = summaries.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("unlogged=") }.flatMap { Int($0.dropFirst(9)) } }.reduce(0, +)
        #expect(!summaries.isEmpty && summed == 1 + burst.count - logged, "\(summaries)")
        #expect(summaries.allSatisfy { $0.contains("(") && $0.contains("succeeded)") && $0.contains("jobLogRate=1") }, "\(summaries)")
    }
}

extension JobLogRateTests {
    @Test func aNegativeRateIsRefusedSayingWhatItMayBe() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let refused = try runProgram(Binaries.poold, ["--socket", directory.path + "/p.sock", "--job-log-rate=-1"])
        #expect(refused.status == 2 && refused.stderr.contains("--job-log-rate must be 0 (every job) or more, not -1"), "\(refused.stderr)")
    }
}
