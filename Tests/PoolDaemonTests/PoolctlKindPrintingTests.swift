import Foundation
import PoolProtocol
import Testing

/// poolctl reads every kind's result as its type in PoolProtocol, the one the daemon builds: a job
/// of each kind is shown with the figures of its typed result (a result its type cannot decode
/// would be printed raw, as `result: {...}`), and `poolctl jobs` lists each one's summary.
@Suite(.timeLimit(.minutes(3)))
struct PoolctlKindPrintingTests {
    /// poolctl's kinds (its `run` subcommands, from its list of kind printers) are PoolProtocol's.
    @Test func poolctlHasACommandForEveryKindPoolProtocolLists() throws {
        let result = try runProgram(Binaries.poolctl, ["--socket", "/nonexistent/p.sock", "run", "frobnicate"])
        let kinds = JobResults.all.map { $0.kind }.joined(separator: ", ")
        #expect(result.status == 2 && result.stderr.contains("the kinds are \(kinds) "), "\(result.stderr)")
    }

    @Test func everyKindsResultIsPrintedFromItsType() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        var records: [JobRecord] = []

        func shown<R: JobResult>(_ type: R.Type, _ arguments: String...) throws -> (result: R, text: String) {
            let run = try daemon.poolctl(arguments: ["--json", "run", R.kind] + arguments)
            #expect(run.status == 0, "\(R.kind): \(run.stderr)")
            let record = try run.json(JobRecord.self)
            records.append(record)
            let result = try #require(try record.result?.decode(R.self), "\(R.kind): \(String(describing: record.result))")
            let job = try daemon.poolctl("job", String(record.id))
            #expect(job.status == 0 && !job.stdout.contains("result: {"), "\(R.kind) printed raw: \(job.stdout)")
            return (result, job.stdout)
        }

        let counter = try shown(CounterResult.self, "--mode", "atomic", "--iterations", "1000")
        #expect(counter.text.contains("counter = \(counter.result.actual) (expected \(counter.result.expected), start 10, mode atomic)"), "\(counter.text)")

        let prodcons = try shown(ProdConsResult.self, "--items", "20", "--produce-delay", "0", "--consume-delay", "0")
        let (producer, consumer) = (try #require(prodcons.result.producers.first), try #require(prodcons.result.consumers.first))
        for line in ["produced 20 items (sum \(prodcons.result.producedSum)), consumed 20 (sum \(prodcons.result.consumedSum)): checksum OK",
                     "enqueue-to-dequeue latency: p50 ", "producer on slot \(producer.slot): produced 20, sum \(producer.sum)",
                     "consumer on slot \(consumer.slot): consumed 20, sum \(consumer.sum)"] {
            #expect(prodcons.text.contains(line), "\(line) not in \(prodcons.text)")
        }

        let event = try shown(EventResult.self, "--set-after", "100ms", "--wait-timeout", "30ms")
        #expect(event.text.contains("event set after 100ms; timeout waiters wait 30ms at a time"), "\(event.text)")
        for waiter in event.result.waiters {
            let kind = waiter.withTimeout ? "timeout waiter" : "waiter"
            #expect(event.text.contains("  \(kind) on slot \(waiter.slot): received event True"), "\(event.text)")
        }

        let tasks = try shown(TasksResult.self, "--count", "4")
        #expect(tasks.result.tasks.count == 4)
        for task in tasks.result.tasks {
            #expect(tasks.text.contains("I'm the task \(task.index) (slot \(task.slot), waited \(task.waitMicros)us)"), "\(tasks.text)")
        }

        let shared = try shown(AppendResult.self, "--counts", "3", "--intervals", "1ms", "--memory", "shared")
        #expect(shared.text.contains("shared string: \(shared.result.text ?? "-") (length 6 of 6)"), "\(shared.text)")
        let separate = try shown(AppendResult.self, "--counts", "3", "--intervals", "1ms", "--memory", "private")
        #expect(separate.result.copies?.count == 2 && separate.text.contains("the daemon's copy: \"\""), "\(separate.text)")
        for copy in separate.result.copies ?? [] {
            #expect(separate.text.contains("slot \(copy.slot)'s own copy: \(copy.text)"), "\(separate.text)")
        }

        let lockcell = try shown(LockCellResult.self, "--increments", "1", "--pause", "0")
        #expect(lockcell.text.contains("counter = 2 (expected 2)"), "\(lockcell.text)")

        let jobs = try daemon.poolctl("jobs")
        #expect(jobs.status == 0)
        for record in records {
            #expect(!record.summary.isEmpty && jobs.stdout.contains(record.summary), "job \(record.id)'s summary '\(record.summary)' not in \(jobs.stdout)")
        }
        try daemon.stop()
    }
}
