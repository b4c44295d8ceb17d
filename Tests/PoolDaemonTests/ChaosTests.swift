import Foundation
// SplitMix64, the daemon's own seeded generator: a run's choices can be replayed.
@testable import PoolDaemon
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `make chaos`: randomized trials that SIGKILL one or two busy workers at random moments of a
/// prodcons job (2 producers, 2 consumers, over the message queue or the shared-memory ring) or a
/// locked counter (4 workers), the same participant
/// twice included (the replacement is killed too), and a first death at a fault point (inside a
/// window a SIGKILL from outside rarely hits) followed by a SIGKILL. Each trial runs on a daemon of its own (so that
/// no slot reaches its crash limit) and must end exact, or failed with a reason the README gives
/// for an account that cannot be exact; a trial that does neither is wrong, one that does not end
/// within the harness's bound (120 s) is hung. `CHAOS_TRIALS` (16 here, 200 in `make chaos`),
/// `CHAOS_SEED` to replay a run's choices, `CHAOS_TRIAL` to run one trial of it alone.
@Suite(.serialized, .timeLimit(.minutes(60)))
struct ChaosTests {
    enum Kind: String, CaseIterable {
        case prodcons = "prodcons 2x2"
        case prodconsShm = "prodcons shm 2x2"
        case counter = "counter locked"
    }

    enum KillPattern: String, CaseIterable {
        case one = "one worker"
        case two = "two workers"
        case sameTwice = "same participant twice"
        /// The first death at a fault point, inside a window (between a send and its record,
        /// inside the lock after a random store), then a SIGKILL of its replacement or another.
        case faultThenKill = "fault point, then kill"
    }

    enum Outcome {
        case exact
        case failed(String)
        case wrong(String)
        case hung
    }

    struct Row {
        var trials = 0, exact = 0, failed = 0, wrong = 0, hung = 0
    }

    /// Why a job may fail instead of ending exact (README, "When workers die or hang").
    static let documentedFailures = ["more than 4 times", "slot failed", "no replacement can start"]

    @Test func randomKillsOfBusyWorkersEndExactOrFailWithTheirReason() throws {
        let environment = ProcessInfo.processInfo.environment
        let trials = environment["CHAOS_TRIALS"].flatMap { Int($0) } ?? 16
        let seed = environment["CHAOS_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...(1 << 53))
        let only = environment["CHAOS_TRIAL"].flatMap { Int($0) }
        print("chaos: \(trials) trials, seed \(seed) (replay: CHAOS_SEED=\(seed) CHAOS_TRIALS=\(trials); one trial: CHAOS_TRIAL=N)")
        var rows: [String: Row] = [:]
        var problems: [String] = []
        var late = 0
        for trial in 1...max(trials, 1) where only == nil || only == trial {
            // Each trial draws from its own generator, so that one can be replayed alone.
            var random = SplitMix64(seed: seed &+ UInt64(trial) &* 0x9E37_79B9_7F4A_7C15)
            let kind = Kind.allCases.randomElement(using: &random)!
            let pattern = KillPattern.allCases.randomElement(using: &random)!
            let (outcome, killedLate) = try run(kind: kind, pattern: pattern, random: &random)
            if killedLate { late += 1 }
            let key = "\(kind.rawValue)|\(pattern.rawValue)"
            var row = rows[key] ?? Row()
            row.trials += 1
            switch outcome {
            case .exact: row.exact += 1
            case .failed(let reason): row.failed += 1; print("chaos trial \(trial) (\(kind.rawValue), \(pattern.rawValue)): failed: \(reason)")
            case .wrong(let what): row.wrong += 1; problems.append("trial \(trial) (\(kind.rawValue), \(pattern.rawValue)): \(what)")
            case .hung: row.hung += 1; problems.append("trial \(trial) (\(kind.rawValue), \(pattern.rawValue)): hung")
            }
            rows[key] = row
        }
        print(Self.table(rows))
        print("chaos: \(late) trials had a kill come after the job had ended (counted by their outcome)")
        for problem in problems { print("chaos: \(problem)") }
        let total = rows.values.reduce(Row()) { Row(trials: $0.trials + $1.trials, exact: $0.exact + $1.exact, failed: $0.failed + $1.failed,
                                                    wrong: $0.wrong + $1.wrong, hung: $0.hung + $1.hung) }
        #expect(total.wrong == 0 && total.hung == 0, "seed \(seed): \(problems)")
    }

    static func table(_ rows: [String: Row]) -> String {
        func line(_ cells: [String]) -> String {
            let widths = [16, 24, 7, 6, 7, 6, 5]
            return zip(cells, widths).enumerated().map { index, pair in
                index < 2 ? pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: max(0, pair.1 - pair.0.count)) + pair.0
            }.joined(separator: " ")
        }
        var lines = [line(["kind", "kill pattern", "trials", "exact", "failed", "wrong", "hung"])]
        for kind in Kind.allCases {
            for pattern in KillPattern.allCases {
                guard let row = rows["\(kind.rawValue)|\(pattern.rawValue)"] else { continue }
                lines.append(line([kind.rawValue, pattern.rawValue, "\(row.trials)", "\(row.exact)", "\(row.failed)",
                                   "\(row.wrong)", "\(row.hung)"]))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// One trial: a daemon, a job, the kills, the verdict. Returns whether a kill came too late
    /// (the job had ended: the trial then says how the job ended without it).
    private func run(kind: Kind, pattern: KillPattern, random: inout SplitMix64) throws -> (Outcome, Bool) {
        let items = 900_000, iterations = 2_000_000
        let batch = Int.random(in: 1...3, using: &random)
        // The fault hits participant 0 (the first producer or the lock's first contender) or, for
        // die-consuming, participant 2 (the first consumer).
        var fault: [String] = []
        var faulty = 0
        if pattern == .faultThenKill {
            switch kind {
            case .prodcons, .prodconsShm:
                let messages = Int.random(in: 1...(items / 2 / batch / 2), using: &random)
                if Bool.random(using: &random) {
                    fault = ["--fault", "die-producing=\(messages)"]
                } else {
                    fault = ["--fault", "die-consuming=\(messages)"]
                    faulty = 2
                }
            case .counter:
                let steps = ["locked", "intent-before", "intent-done", "intent-marked", "counter", "count", "intent-cleared"]
                fault = ["--fault", "die-holding-lock=\(Int.random(in: 0..<(iterations / 2), using: &random))@\(steps.randomElement(using: &random)!)"]
            }
        }
        let daemon = try DaemonHarness.start(workers: 4, arguments: fault)
        defer { try? daemon.stop() }
        let parameters: [String: JSONValue]
        switch kind {
        case .prodcons, .prodconsShm:
            parameters = ["producers": .number(2), "consumers": .number(2), "items": .number(Double(items)), "batch": .number(Double(batch)),
                          "transport": .string(kind == .prodconsShm ? "shm" : "mq")]
        case .counter:
            parameters = ["mode": .string("locked"), "workers": .number(4), "iterations": .number(Double(iterations))]
        }
        let id = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                          RunRequest(kind: kind == .counter ? "counter" : "prodcons", parameters: .object(parameters), detach: true),
                                          returning: JobReply.self).job.id
        let total = kind == .counter ? 4 * iterations + 1 : 2 * items
        let first = Int.random(in: 0..<4, using: &random)
        var late = false
        func moment(after fraction: Double) -> Double { Double.random(in: fraction...min(fraction + 0.3, 0.7), using: &random) }
        let atFirst = Double.random(in: 0.02...0.6, using: &random)
        if pattern == .faultThenKill {
            // The fault's replacement as soon as it has taken over or later, or another worker.
            let at = Bool.random(using: &random) ? 0 : Int(atFirst * Double(total))
            let victim = Bool.random(using: &random) ? faulty : (faulty + Int.random(in: 1..<4, using: &random)) % 4
            late = try !daemon.killBusyParticipant(victim, of: id, atProgress: at, jitter: &random, replacementOnly: victim == faulty)
        } else {
            late = try !daemon.killBusyParticipant(first, of: id, atProgress: Int(atFirst * Double(total)), jitter: &random)
        }
        switch pattern {
        case .one, .faultThenKill:
            break
        case .two:
            let second = (first + Int.random(in: 1..<4, using: &random)) % 4
            // A third of the time both at once.
            let at = Bool.random(using: &random) && Bool.random(using: &random) ? 0 : Int(moment(after: atFirst) * Double(total))
            late = try !daemon.killBusyParticipant(second, of: id, atProgress: at, jitter: &random) || late
        case .sameTwice:
            // Its replacement: as soon as it has taken over, or later on.
            let at = Bool.random(using: &random) ? 0 : Int(moment(after: atFirst) * Double(total))
            late = try !daemon.killBusyParticipant(first, of: id, atProgress: at, jitter: &random, replacementOnly: true) || late
        }
        let job: JobRecord
        do {
            job = try daemon.waitForJob(id)
        } catch {
            return (.hung, late)
        }
        return (Self.verdict(job, kind: kind, items: items, iterations: iterations), late)
    }

    static func verdict(_ job: JobRecord, kind: Kind, items: Int, iterations: Int) -> Outcome {
        let result = job.result
        switch job.state {
        case .succeeded:
            switch kind {
            case .prodcons, .prodconsShm:
                let produced = result?["produced"]?.intValue, consumed = result?["consumed"]?.intValue
                let exact = produced == items && consumed == items && result?["producedSum"] == result?["consumedSum"]
                    && result?["checksumOK"] == .bool(true) && result?["unsettled"] == nil
                return exact ? .exact : .wrong("succeeded but inexact: produced \(produced ?? -1), consumed \(consumed ?? -1), sums \(result?["producedSum"]?.intValue ?? -1)/\(result?["consumedSum"]?.intValue ?? -1)")
            case .counter:
                guard let counter = try? result?.decode(CounterResult.self) else { return .wrong("succeeded without a counter result") }
                let exact = counter.actual == counter.expected && counter.lost == 0 && counter.operations == 4 * iterations + 1
                    && counter.actual == counter.start - 1
                return exact ? .exact : .wrong("succeeded but inexact: \(counter)")
            }
        case .failed:
            let error = job.error ?? ""
            guard Self.documentedFailures.contains(where: error.contains) else { return .wrong("failed: \(error)") }
            return .failed(error)
        default:
            return .wrong("ended \(job.state.rawValue): \(job.error ?? "")")
        }
    }
}

extension DaemonHarness {
    /// Once the job's progress reaches `done`, plus a random few milliseconds (so that the moment
    /// is not always a progress push), SIGKILLs the worker running `participant` (with
    /// `replacementOnly`, only a worker that took the part over from a dead one). Returns false
    /// when the job ended first.
    func killBusyParticipant(_ participant: Int, of id: Int, atProgress done: Int, jitter random: inout SplitMix64,
                             replacementOnly: Bool = false) throws -> Bool {
        guard try progressReaches(job: id, done: done) else { return false }
        usleep(UInt32.random(in: 0..<120_000, using: &random))
        let slot = try jobRecord(id).slots[participant]
        var victim: Int?
        try waitForStatus { status in
            if status.jobsRunning == 0 { return true }
            guard let worker = status.workers.first(where: { $0.slot == slot }), worker.state == .busy, worker.job == id,
                  !replacementOnly || worker.restarts > 0 else { return false }
            victim = worker.pid
            return true
        }
        guard let victim else { return false }
        return kill(Int32(victim), SIGKILL) == 0
    }

    /// Follows the job until its progress reaches `done` (true) or it ends (false).
    func progressReaches(job id: Int, done: Int) throws -> Bool {
        var reached = false
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("waiting for job \(id) to make progress")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            reached = job.state == .running && (job.progress?.done ?? 0) >= done
            return !reached && !job.state.isFinished
        }
        return reached
    }
}
