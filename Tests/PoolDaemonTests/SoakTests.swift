import Foundation
import PoolProtocol
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One daemon for a long life: POOLD_SOAK_JOBS jobs (400 by default; `make soak` runs 10,000 on the
/// release build) of every kind from several clients at once, mixed with cancels of running and
/// queued jobs, resizes and reloads. Every result is checked exactly, and at a quiet point after
/// each round the daemon's descriptors, threads, RSS and IPC objects are sampled: they stay flat.
/// It runs in a private IPC namespace, so that the kernel's queue limits are this daemon's alone.
@Suite(.serialized, .timeLimit(.minutes(120)))
struct SoakTests {
    static let clients = 4
    static let rounds = 10
    /// The pool size at every quiet point; resizes and reloads move it between 3 and 5, and no job
    /// asks for more than 3 workers, so none is ever refused or left unable to run.
    static let quietPoolSize = 4

    @Test func oneDaemonRunsThousandsOfJobsExactlyAndStaysFlat() throws {
        let jobs = Int(ProcessInfo.processInfo.environment["POOLD_SOAK_JOBS"] ?? "") ?? 400
        let configuration = try TemporaryDirectory()
        defer { configuration.remove() }
        let configPath = configuration.path + "/poold.conf"
        // The warm-up round fills the history (1000 records by default), so that what the daemon
        // keeps by design has reached its bound before flatness is judged.
        let historyLimit = min(1000, max(20, jobs / Self.rounds))
        try "workers = \(Self.quietPoolSize)\nhistory-limit = \(historyLimit)\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        let namespace = try IPCNamespace()
        defer { namespace.close() }
        // The pool size from the file alone: a size on the command line would hold it against reloads.
        let daemon = try DaemonHarness.start(workers: nil, arguments: ["--config", configPath, "--log-level", "info"], namespace: namespace)
        defer { try? daemon.stop() }
        let ledger = SoakLedger()
        let soak = SoakDaemon(socketPath: daemon.socketPath, pid: daemon.pid, configPath: configPath, ledger: ledger)

        var samples = [try quietSample(daemon, label: "start", jobs: 0)]
        let began = Date()
        do {
            for round in 1...Self.rounds {
                ledger.allow(jobs: jobs * round / Self.rounds)
                runClients(soak, ledger)
                if ledger.stopped { break }
                samples.append(try quietSample(daemon, label: round == 1 ? "round 1 (warm-up)" : "round \(round)",
                                               jobs: ledger.jobsRun, baseline: samples[0]))
            }
            // Once, after the last sample: a reply of 1000 records leaves the allocator a few MiB
            // larger, which would blur RSS.
            if !ledger.stopped { try expectHistory(daemon, newest: ledger.jobsRun, limit: historyLimit) }
        } catch {
            let pool = (try? daemon.status()).map { "\($0.jobsRunning) running, \($0.jobsQueued) queued, \(Self.describe($0.workers))" }
            Issue.record(error, "the soak stopped after \(samples.count - 1) of \(Self.rounds) rounds (a quiet pool is \(Self.quietPoolSize) idle workers): \(pool ?? "no status")")
        }
        let seconds = Date().timeIntervalSince(began)
        let report = ledger.report
        print(Self.table(report, samples: samples, seconds: seconds))

        let notExact = report.problems.count
        #expect(notExact == 0, "the first results that were not exact:\n\(report.problems.prefix(20).joined(separator: "\n"))")
        for row in Exercise.rows { #expect((report.rows[row]?.count ?? 0) > 0, "no \(row) in \(report.jobsRun) jobs") }
        #expect(report.eventTimeouts > 0, "the event jobs' timeout waiters never timed out")
        #expect(try daemon.status().jobsFinished == report.jobsRun, "every job submitted finished")
        if samples.count > 1 {
            for problem in Self.flatness(samples, prefix: daemon.prefix) { Issue.record(Comment(rawValue: problem)) }
        }
        try daemon.stop()
    }

    /// The clients, each with a connection of its own on a thread of its own (the calls block),
    /// until the round's jobs are all issued. A call that fails (no reply, a refusal, a wait that
    /// never ends) stops them all: what follows it would only wait out more timeouts.
    private func runClients(_ soak: SoakDaemon, _ ledger: SoakLedger) {
        let group = DispatchGroup()
        for _ in 0..<Self.clients {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try soak.client()
                    while let exercise = ledger.nextExercise() {
                        do {
                            ledger.record(try exercise.body(soak, client), jobs: exercise.jobs)
                        } catch {
                            ledger.record([Outcome(row: exercise.rows[0], problem: "\(exercise.rows[0]): \(error)")], jobs: exercise.jobs)
                            throw error
                        }
                    }
                } catch {
                    ledger.stop()
                }
            }.start()
        }
        group.wait()
    }

    /// Once the round's jobs are done and the pool is back at its quiet size with every worker
    /// ready, the daemon holds only what an idle pool needs.
    private func quietSample(_ daemon: DaemonHarness, label: String, jobs: Int, baseline: ResourceSample? = nil) throws -> ResourceSample {
        _ = try daemon.client().call(PoolInterface.Method.resize.qualifiedName, ResizeRequest(workers: Self.quietPoolSize),
                                     returning: ResizeReply.self)
        try daemon.waitForStatus {
            $0.jobsRunning == 0 && $0.jobsQueued == 0 && $0.workers.count == Self.quietPoolSize && $0.workers.allSatisfy { $0.state == .ready }
        }
        // A call answered on a new connection: by then the daemon's one event loop has usually seen
        // the earlier connections close. This one is open while the sample is taken, every time.
        // Under a loaded machine a client's close can still be on its way: a sample with more
        // sockets than the first one had is taken again, for a while (a leaked one stays).
        let deadline = Date().addingTimeInterval(5)
        while true {
            let probe = try daemon.client()
            let sample = try withExtendedLifetime(probe) {
                _ = try probe.call(PoolInterface.Method.status.qualifiedName, returning: StatusReply.self)
                let free = daemon.freeJobSegments
                return ResourceSample(label: label, jobs: jobs, pid: daemon.pid, ipcObjects: daemon.ipcObjects.filter { !free.contains($0) },
                                      freeJobSegments: free)
            }
            guard let first = baseline, sample.sockets > first.sockets, Date() < deadline else { return sample }
            usleep(50_000)
        }
    }

    /// The history keeps the newest `limit` jobs, each once and finished: ids are never handed
    /// out twice, and none is lost.
    private func expectHistory(_ daemon: DaemonHarness, newest: Int, limit: Int) throws {
        let listed = try daemon.client().call(PoolInterface.Method.listJobs.qualifiedName, ListJobsRequest(limit: limit + 1),
                                              returning: ListJobsReply.self).jobs
        let ids = listed.map(\.id), unfinished = listed.filter { !$0.state.isFinished }.map(\.id)
        let kept = ids == Array((max(1, newest - limit + 1)...newest).reversed())
        #expect(kept && unfinished.isEmpty, "after \(newest) jobs the history holds \(ids.count) (\(ids.first ?? 0) down to \(ids.last ?? 0)), unfinished: \(unfinished)")
    }

    /// Flat: at every quiet point the daemon holds no descriptor of a job and the IPC objects of
    /// the start (an idle pool's) besides the job segments it keeps free for reuse, of which there
    /// are at most `freeSegmentLimit` (a leaked or still used segment is not free: it counts as
    /// an object the start did not have); after the warm-up round (the first use of libdispatch adds its
    /// epoll, eventfd, timerfd and threads; the history fills), descriptors and threads are those
    /// of the warm-up (but for libdispatch's workers, which come and go with the load: one per CPU
    /// at most beyond the warm-up's), and RSS grows by less than 4 MiB overall and 1 MiB in the
    /// second half (a leak grows steadily; the allocator settling does not).
    static func flatness(_ samples: [ResourceSample], prefix: String) -> [String] {
        let start = samples[0], warm = samples[1], middle = samples[samples.count / 2], end = samples.last!
        var problems: [String] = []
        for sample in samples {
            let held = sample.descriptors.filter { $0.contains(prefix + ".job") }
            if held.count > 0 { problems.append("\(sample.label): finished jobs still hold descriptors: \(held)") }
            if sample.ipcObjects != start.ipcObjects {
                problems.append("\(sample.label): IPC objects \(sample.ipcObjects), at the start \(start.ipcObjects)")
            }
            if sample.freeJobSegments.count > freeSegmentLimit {
                problems.append("\(sample.label): \(sample.freeJobSegments.count) free job segments kept, above \(freeSegmentLimit)")
            }
        }
        // /dev/null: the reserve kept for respawns, which also holds the place of a worker that has
        // just exited until the next spawn or job start; at most one per slot beyond the warm-up's.
        let reserve = { (sample: ResourceSample) in sample.descriptors.filter { $0 == "/dev/null" } }
        let others = { (sample: ResourceSample) in sample.descriptors.filter { $0 != "/dev/null" } }
        for sample in samples.dropFirst(2) {
            if others(sample) != others(warm) || reserve(sample).count > reserve(warm).count + 5 {
                problems.append("\(sample.label): \(sample.descriptors.count) descriptors, \(warm.descriptors.count) after the warm-up; "
                                + "more: \(sample.descriptors.subtracting(warm.descriptors)), fewer: \(warm.descriptors.subtracting(sample.descriptors))")
            }
            if sample.ownThreads != warm.ownThreads || sample.threads > warm.threads + ProcessInfo.processInfo.activeProcessorCount {
                problems.append("\(sample.label): threads \(sample.threadNames), after the warm-up \(warm.threadNames)")
            }
        }
        let mib = 1024
        if end.rssKiB - warm.rssKiB > 4 * mib {
            problems.append("RSS grew by \(end.rssKiB - warm.rssKiB) KiB after the warm-up (\(warm.rssKiB) to \(end.rssKiB) KiB)")
        }
        if end.rssKiB - middle.rssKiB > mib {
            problems.append("RSS still grew by \(end.rssKiB - middle.rssKiB) KiB in the second half (\(middle.rssKiB) to \(end.rssKiB) KiB)")
        }
        return problems
    }

    /// The most job segments the daemon keeps free for reuse (JobSegmentPool.capacity).
    static let freeSegmentLimit = 8

    static func describe(_ workers: [WorkerInfo]) -> String {
        workers.map { "slot \($0.slot) \($0.state.rawValue)" + ($0.lastExit.map { " (\($0))" } ?? "") }.joined(separator: ", ")
    }

    static func table(_ report: SoakLedger.Report, samples: [ResourceSample], seconds: Double) -> String {
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        func right(_ value: some CustomStringConvertible, _ width: Int) -> String {
            let text = "\(value)"
            return String(repeating: " ", count: max(0, width - text.count)) + text
        }
        let poolChanges = (report.rows["resize"]?.count ?? 0) + (report.rows["reload"]?.count ?? 0)
        var lines = ["soak: \(report.jobsRun) jobs in \(String(format: "%.0f", seconds)) s from \(clients) clients, "
                     + "\(poolChanges) resizes and reloads, \(report.problems.count) not exact",
                     pad("exercise", 26) + right("jobs", 7) + right("not exact", 11)]
        for row in Exercise.rows {
            let tally = report.rows[row] ?? SoakLedger.Tally()
            lines.append(pad(row, 26) + right(tally.count, 7) + right(tally.problems, 11))
        }
        lines.append("event timeouts seen by timeout waiters: \(report.eventTimeouts)")
        lines.append(pad("sample (quiet)", 20) + right("jobs", 7) + right("fds", 6) + right("threads", 9) + right("RSS KiB", 10)
                     + right("IPC objects", 13) + right("free segments", 15))
        for sample in samples {
            lines.append(pad(sample.label, 20) + right(sample.jobs, 7) + right(sample.descriptors.count, 6) + right(sample.threads, 9)
                         + right(sample.rssKiB, 10) + right(sample.ipcObjects.count, 13) + right(sample.freeJobSegments.count, 15))
        }
        if let peak = report.peak {
            lines.append(pad("peak under load", 20) + right("", 7) + right(peak.descriptors, 6) + right(peak.threads, 9)
                         + right(peak.rssKiB, 10))
        }
        return lines.joined(separator: "\n")
    }
}

/// What a client thread needs of the daemon (the harness stays on the test's thread), and the
/// ledger the clients share.
struct SoakDaemon: Sendable {
    let socketPath: String
    let pid: Int32
    let configPath: String
    let ledger: SoakLedger

    func client() throws -> VarlinkClient {
        try VarlinkClient(socketPath: socketPath, timeoutSeconds: 120)
    }
}

/// The daemon's descriptors (by what they point at), threads, RSS and IPC objects at one moment.
struct ResourceSample: Sendable {
    let label: String
    let jobs: Int
    let descriptors: Multiset
    let threadNames: Multiset
    var threads: Int { threadNames.count }
    var sockets: Int { descriptors.filter { $0 == "socket" }.count }
    /// The threads the daemon started itself, not libdispatch's workers (named after their QoS).
    var ownThreads: Multiset { threadNames.filter { !$0.contains("qos") } }
    let rssKiB: Int
    /// Its IPC objects but the job segments it keeps free for reuse, and those.
    let ipcObjects: [String]
    let freeJobSegments: [String]

    init(label: String, jobs: Int, pid: Int32, ipcObjects: [String] = [], freeJobSegments: [String] = []) {
        self.label = label
        self.jobs = jobs
        let fdDirectory = "/proc/\(pid)/fd"
        let targets = ((try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? []).map {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + $0)) ?? "?"
        }
        // Sockets and pipes differ by inode only: count them by type.
        descriptors = Multiset(targets.map { $0.replacing(/:\[\d+\]/, with: "") })
        threadNames = Multiset(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).map {
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .newlines)
        })
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        rssKiB = rss.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        self.ipcObjects = ipcObjects
        self.freeJobSegments = freeJobSegments
    }
}

/// Counted strings, for telling which descriptors a sample has beyond another.
struct Multiset: Sendable, Equatable, CustomStringConvertible {
    private(set) var counts: [String: Int] = [:]
    var count: Int { counts.values.reduce(0, +) }

    init(_ items: [String]) {
        for item in items { counts[item, default: 0] += 1 }
    }

    func filter(_ isIncluded: (String) -> Bool) -> Multiset {
        var result = Multiset([])
        result.counts = counts.filter { isIncluded($0.key) }
        return result
    }

    func subtracting(_ other: Multiset) -> Multiset {
        var result = Multiset([])
        for (item, count) in counts where count > other.counts[item, default: 0] {
            result.counts[item] = count - other.counts[item, default: 0]
        }
        return result
    }

    var description: String {
        counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
    }
}

/// What one exercise ended as: its row in the table and, when the result was not exact, why.
struct Outcome: Sendable {
    let row: String
    let problem: String?
    var eventTimeouts = 0
}

/// Hands out the exercises in turn to the clients until a round's jobs are issued, and tallies
/// what they found.
final class SoakLedger: Sendable {
    struct Tally: Sendable {
        var count = 0
        var problems = 0
    }

    struct Peak: Sendable {
        var descriptors = 0
        var threads = 0
        var rssKiB = 0
    }

    struct Report: Sendable {
        var jobsIssued = 0
        var jobsAllowed = 0
        var nextExercise = 0
        var jobsRun = 0
        var eventTimeouts = 0
        var rows: [String: Tally] = [:]
        var problems: [String] = []
        var peak: Peak?
        var stopped = false
    }

    private let state = Mutex(Report())
    /// Serialises the pool changes: each waits for its size to be reached before the next.
    let poolChanges = Mutex(0)

    var report: Report { state.withLock { $0 } }
    var jobsRun: Int { state.withLock { $0.jobsRun } }

    func allow(jobs: Int) {
        state.withLock { $0.jobsAllowed = jobs }
    }

    /// No more exercises, this round or later.
    func stop() {
        state.withLock { $0.stopped = true }
    }

    var stopped: Bool { state.withLock { $0.stopped } }

    func nextExercise() -> Exercise? {
        state.withLock { state in
            guard !state.stopped, state.jobsIssued < state.jobsAllowed else { return nil }
            let exercise = Exercise.all[state.nextExercise % Exercise.all.count]
            state.nextExercise += 1
            state.jobsIssued += exercise.jobs
            return exercise
        }
    }

    func record(_ outcomes: [Outcome], jobs: Int) {
        state.withLock { state in
            state.jobsRun += jobs
            for outcome in outcomes {
                state.rows[outcome.row, default: Tally()].count += 1
                state.eventTimeouts += outcome.eventTimeouts
                if let problem = outcome.problem {
                    state.rows[outcome.row]!.problems += 1
                    state.problems.append(problem)
                }
            }
        }
    }

    func notePeak(_ sample: ResourceSample) {
        state.withLock { state in
            var peak = state.peak ?? Peak()
            peak.descriptors = max(peak.descriptors, sample.descriptors.count)
            peak.threads = max(peak.threads, sample.threads)
            peak.rssKiB = max(peak.rssKiB, sample.rssKiB)
            state.peak = peak
        }
    }
}

/// One thing a client does: run a job of one kind and check its result exactly, cancel jobs, or
/// change the pool's size. Every client takes the next one in `all`, round and round.
struct Exercise: Sendable {
    /// The rows its outcomes go to (a cancel's job was queued or running when cancelled).
    let rows: [String]
    /// Jobs it submits.
    let jobs: Int
    let body: @Sendable (SoakDaemon, VarlinkClient) throws -> [Outcome]

    static func job(_ row: String, _ kind: String, _ parameters: [String: JSONValue], timeout: String? = nil,
                    check: @escaping @Sendable (JobRecord) -> (problem: String?, eventTimeouts: Int)) -> Exercise {
        Exercise(rows: [row], jobs: 1) { _, client in
            let request = RunRequest(kind: kind, parameters: .object(parameters), timeout: timeout)
            let job = try client.call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job
            let (problem, timeouts) = check(job)
            return [Outcome(row: row, problem: problem.map { "\(row), job \(job.id): \($0)" }, eventTimeouts: timeouts)]
        }
    }

    static let all: [Exercise] = [
        job("counter locked", "counter", counter("locked")) { (exactCount($0), 0) },
        job("prodcons 1x1", "prodcons", prodcons(items: 300)) { (exactChecksum($0, items: 300), 0) },
        job("event with timeouts", "event", ["waiters": .number(1), "timeoutWaiters": .number(2), "timeout": .string("1ms"),
                                             "setAfter": .string("20ms")]) { everyWaiterWoke($0) },
        job("tasks", "tasks", ["count": .number(12), "workers": .number(3)]) { (everyTask($0, count: 12), 0) },
        cancelPair("counter"),
        job("counter atomic", "counter", counter("atomic")) { (exactCount($0), 0) },
        job("prodcons 2x1 batch 4", "prodcons", prodcons(items: 400, producers: 2, batch: 4)) { (exactChecksum($0, items: 400), 0) },
        job("append shared", "append", append("shared", counts: [5, 7])) { (sharedText($0, counts: [5, 7]), 0) },
        cancelRace("cancel prodcons at once", "prodcons", prodcons(items: 300)) { exactChecksum($0, items: 300) },
        poolChange,
        job("counter unsafe", "counter", counter("unsafe")) { (trueRace($0), 0) },
        job("prodcons 1x2 trace", "prodcons", prodcons(items: 20, consumers: 2, trace: true)) { (exactTrace($0, items: 20), 0) },
        job("append private", "append", append("private", counts: [3, 4])) { (privateCopies($0, counts: [3, 4]), 0) },
        cancelPair("prodcons"),
        cancelRace("cancel counter at once", "counter", counter("locked")) { exactCount($0) },
        job("event job timeout", "event", ["waiters": .number(1), "timeoutWaiters": .number(0), "setAfter": .string("60m")],
            timeout: "20ms") { (timedOut($0), 0) },
        poolChange,
    ]

    static var rows: [String] {
        var seen: [String] = []
        for row in all.flatMap(\.rows) where !seen.contains(row) { seen.append(row) }
        return seen
    }

    // MARK: Jobs and their exact checks

    static let iterations = 20_000

    static func counter(_ mode: String) -> [String: JSONValue] {
        ["mode": .string(mode), "workers": .number(2), "iterations": .number(Double(iterations)), "start": .number(10)]
    }

    static func prodcons(items: Int, producers: Int = 1, consumers: Int = 1, batch: Int = 1, trace: Bool = false) -> [String: JSONValue] {
        ["items": .number(Double(items)), "producers": .number(Double(producers)), "consumers": .number(Double(consumers)),
         "batch": .number(Double(batch)), "trace": .bool(trace), "produceDelay": .string("0"), "consumeDelay": .string("0")]
    }

    static func append(_ memory: String, counts: [Int]) -> [String: JSONValue] {
        ["memory": .string(memory), "chars": .string("oO"), "counts": .array(counts.map { .number(Double($0)) }),
         "intervals": .array([.number(0), .number(0)])]
    }

    static func succeeded(_ job: JobRecord) -> String? {
        job.state == .succeeded ? nil : "\(job.state): \(job.error ?? "no error")"
    }

    /// Locked and atomic: the notebook's 10 + 20,000 - 20,001 = 9, nothing lost.
    static func exactCount(_ job: JobRecord) -> String? {
        if let failed = succeeded(job) { return failed }
        guard let result = try? job.result?.decode(CounterResult.self) else { return "no counter result" }
        guard result.actual == 9, result.expected == 9, result.lost == 0, result.operations == 2 * iterations + 1 else {
            return "counter \(result.actual), expected \(result.expected), lost \(result.lost), \(result.operations) operations"
        }
        return nil
    }

    /// Unsafe may lose updates, but its account must say so truly: the counter is off by exactly
    /// the increments and decrements it reports lost.
    static func trueRace(_ job: JobRecord) -> String? {
        if let failed = succeeded(job) { return failed }
        guard let result = try? job.result?.decode(CounterResult.self) else { return "no counter result" }
        let up = result.lostIncrements ?? -1, down = result.lostDecrements ?? -1
        guard result.expected == 9, up >= 0, down >= 0, result.lost == up + down, result.actual == result.expected - up + down,
              result.operations == 2 * iterations + 1 else {
            return "counter \(result.actual), expected \(result.expected), lost \(result.lost) (\(up) increments, \(down) decrements), \(result.operations) operations"
        }
        return nil
    }

    static func exactChecksum(_ job: JobRecord, items: Int) -> String? {
        if let failed = succeeded(job) { return failed }
        guard let result = job.result else { return "no result" }
        guard case .array(let consumers)? = result["consumers"] else { return "no consumers: \(result)" }
        let consumedByEach = consumers.compactMap { $0["consumed"]?.intValue }.reduce(0, +)
        guard result["checksumOK"] == .bool(true), result["produced"]?.intValue == items, result["consumed"]?.intValue == items,
              result["producedSum"] == result["consumedSum"], consumedByEach == items else {
            return "checksum wrong: \(result)"
        }
        return nil
    }

    /// A trace has a line per item put and taken, and its consumed values add up to the checksum.
    static func exactTrace(_ job: JobRecord, items: Int) -> String? {
        if let wrong = exactChecksum(job, items: items) { return wrong }
        let log = job.log ?? []
        let consumed = log.compactMap { line -> Int? in
            guard line.hasPrefix("Consumed ") else { return nil }
            return Int(line.dropFirst("Consumed ".count).prefix { $0.isNumber })
        }
        guard log.count == 2 * items, consumed.count == items, job.result?["consumedSum"]?.intValue == consumed.reduce(0, +) else {
            return "trace of \(log.count) lines, \(consumed.count) consumed, adding up to \(consumed.reduce(0, +)), not \(job.result?["consumedSum"] ?? .null)"
        }
        return nil
    }

    /// Every waiter received the event; only the timeout waiters timed out.
    static func everyWaiterWoke(_ job: JobRecord) -> (problem: String?, eventTimeouts: Int) {
        if let failed = succeeded(job) { return (failed, 0) }
        guard case .array(let waiters)? = job.result?["waiters"], waiters.count == 3, job.result?["set"] == .bool(true),
              waiters.allSatisfy({ $0["received"] == .bool(true) }),
              waiters.filter({ $0["withTimeout"] == .bool(false) }).allSatisfy({ $0["timeouts"]?.intValue == 0 }) else {
            return ("waiters wrong: \(job.result ?? .null)", 0)
        }
        return (nil, waiters.compactMap { $0["timeouts"]?.intValue }.reduce(0, +))
    }

    /// The Run's timeout cancels the job and fails it, saying so; its waiter never received.
    static func timedOut(_ job: JobRecord) -> String? {
        guard job.state == .failed, job.error?.contains("timed out") == true,
              case .array(let waiters)? = job.result?["waiters"], waiters.allSatisfy({ $0["received"] == .bool(false) }) else {
            return "\(job.state), \(job.error ?? "no error"), \(job.result ?? .null)"
        }
        return nil
    }

    static func everyTask(_ job: JobRecord, count: Int) -> String? {
        if let failed = succeeded(job) { return failed }
        guard case .array(let tasks)? = job.result?["tasks"], tasks.compactMap({ $0["index"]?.intValue }).sorted() == Array(0..<count),
              tasks.allSatisfy({ job.slots.contains($0["slot"]?.intValue ?? -1) }) else {
            return "tasks wrong: \(job.result ?? .null)"
        }
        return nil
    }

    static func sharedText(_ job: JobRecord, counts: [Int]) -> String? {
        if let failed = succeeded(job) { return failed }
        let text = job.result?["text"]?.stringValue ?? ""
        guard text.count == counts.reduce(0, +), text.filter({ $0 == "o" }).count == counts[0], text.filter({ $0 == "O" }).count == counts[1],
              job.result?["length"]?.intValue == text.count else {
            return "shared text '\(text)'"
        }
        return nil
    }

    static func privateCopies(_ job: JobRecord, counts: [Int]) -> String? {
        if let failed = succeeded(job) { return failed }
        guard case .array(let copies)? = job.result?["copies"], job.result?["daemonCopy"] == .string(""),
              copies.compactMap({ $0["text"]?.stringValue }) == [String(repeating: "o", count: counts[0]), String(repeating: "O", count: counts[1])] else {
            return "private copies wrong: \(job.result ?? .null)"
        }
        return nil
    }

    // MARK: Cancels

    /// Two endless jobs submitted back to back: the second, cancelled at once, is usually still
    /// queued behind the other clients' jobs; the first is cancelled once it has made progress.
    /// Each must end `cancelled` with a true account of what it did.
    static func cancelPair(_ kind: String) -> Exercise {
        let parameters: [[String: JSONValue]] = kind == "counter"
            ? [["mode": .string("atomic"), "workers": .number(2), "iterations": .number(10_000_000_000)],
               ["mode": .string("locked"), "workers": .number(2), "iterations": .number(10_000_000_000)]]
            : [prodcons(items: 1_000_000_000), prodcons(items: 1_000_000_000, producers: 2)]
        return Exercise(rows: ["cancel \(kind) (running)", "cancel \(kind) (queued)"], jobs: 2) { soak, client in
            let submitted = try parameters.map {
                try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object($0), detach: true),
                                returning: JobReply.self).job.id
            }
            _ = try client.call(PoolInterface.Method.cancel.qualifiedName, JobIDRequest(id: submitted[1]), returning: JobReply.self)
            _ = try soak.follow(submitted[0]) { ($0.progress?.done ?? 0) > 0 || $0.state.isFinished }
            _ = try client.call(PoolInterface.Method.cancel.qualifiedName, JobIDRequest(id: submitted[0]), returning: JobReply.self)
            return try submitted.map { id in
                let job = try soak.follow(id) { $0.state.isFinished }
                let row = "cancel \(kind) " + (job.startedAt == nil ? "(queued)" : "(running)")
                return Outcome(row: row, problem: trueCancelAccount(job).map { "\(row), job \(id): \($0)" })
            }
        }
    }

    /// A short job cancelled as soon as it is queued: the cancel races its start and its end, and
    /// whichever wins, its record is true (succeeded and exact, or cancelled with its account).
    static func cancelRace(_ row: String, _ kind: String, _ parameters: [String: JSONValue],
                           exact: @escaping @Sendable (JobRecord) -> String?) -> Exercise {
        Exercise(rows: [row], jobs: 1) { soak, client in
            let id = try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: .object(parameters), detach: true),
                                     returning: JobReply.self).job.id
            _ = try client.call(PoolInterface.Method.cancel.qualifiedName, JobIDRequest(id: id), returning: JobReply.self)
            let job = try soak.follow(id) { $0.state.isFinished }
            let problem = job.state == .succeeded ? exact(job) : trueCancelAccount(job)
            return [Outcome(row: row, problem: problem.map { "\(row), job \(id): \($0)" })]
        }
    }

    /// A job cancelled while queued never ran; one cancelled while running accounts for its work:
    /// the counter's count is that of the updates done, and what prodcons consumed was produced
    /// (all of it, with the same sum, when the counts agree).
    static func trueCancelAccount(_ job: JobRecord) -> String? {
        guard job.state == .cancelled, job.error?.contains("cancel") == true else { return "\(job.state): \(job.error ?? "no error")" }
        guard job.startedAt != nil else {
            return job.result == nil && job.slots.isEmpty ? nil : "never started, yet slots \(job.slots), result \(job.result ?? .null)"
        }
        guard let result = job.result else { return "no result" }
        if job.kind == "counter" {
            guard let count = try? result.decode(CounterResult.self), count.actual == count.expected, count.lost == 0 else {
                return "counter account wrong: \(result)"
            }
            return nil
        }
        guard let items = result["items"]?.intValue, let produced = result["produced"]?.intValue, let consumed = result["consumed"]?.intValue,
              let producedSum = result["producedSum"]?.intValue, let consumedSum = result["consumedSum"]?.intValue,
              consumed <= produced, produced <= items, consumedSum <= producedSum, consumed < produced || consumedSum == producedSum,
              result["checksumOK"] == .bool(consumed == items && produced == items && consumedSum == producedSum) else {
            return "prodcons account wrong: \(result)"
        }
        return nil
    }

    // MARK: Resizes and reloads

    /// The pool moves 4 → 5 → 3 → 4 → 5 ..., by Resize and by SIGHUP with a changed configuration
    /// file in turn; each change is followed until the pool has that many workers, none failed.
    static let poolChange = Exercise(rows: ["resize", "reload"], jobs: 0) { soak, client in
        try soak.ledger.poolChanges.withLock { step in
            defer { step += 1 }
            let size = [5, 3, 4][step % 3]
            let row = step % 2 == 0 ? "resize" : "reload"
            if row == "resize" {
                _ = try client.call(PoolInterface.Method.resize.qualifiedName, ResizeRequest(workers: size), returning: ResizeReply.self)
            } else {
                let file = try String(contentsOfFile: soak.configPath, encoding: .utf8)
                try file.replacing(/workers = \d+/, with: "workers = \(size)").write(toFile: soak.configPath, atomically: true, encoding: .utf8)
                kill(soak.pid, SIGHUP)
            }
            let status = try soak.followStatus {
                $0.poolSize == size && $0.workers.count == size && !$0.workers.contains { $0.state == .starting || $0.state == .stopping }
            }
            soak.ledger.notePeak(ResourceSample(label: "load", jobs: 0, pid: soak.pid))
            let failed = status.workers.filter { $0.state == .failed || $0.state == .backoff }
            return [Outcome(row: row, problem: failed.isEmpty ? nil : "\(row) to \(size): \(SoakTests.describe(failed))")]
        }
    }
}

extension SoakDaemon {
    /// Follows a job with GetJob + more until `done` holds of its record (the daemon pushes a
    /// reply on every change), on a connection of its own: one left mid-stream is closed.
    func follow(_ id: Int, until done: (JobRecord) -> Bool) throws -> JobRecord {
        var matched: JobRecord?
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("following job \(id)")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            if done(job) { matched = job }
            return matched == nil
        }
        guard let matched else { throw HarnessError(description: "the stream of job \(id) ended early") }
        return matched
    }

    /// Follows the pool with Status + more until `done` holds, on a connection of its own.
    func followStatus(until done: (StatusReply) -> Bool) throws -> StatusReply {
        var matched: StatusReply?
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
            try deadline.check("following the pool")
            let status = try VarlinkClient.decode(reply, as: StatusReply.self)
            if done(status) { matched = status }
            return matched == nil
        }
        guard let matched else { throw HarnessError(description: "the status stream ended early") }
        return matched
    }
}
