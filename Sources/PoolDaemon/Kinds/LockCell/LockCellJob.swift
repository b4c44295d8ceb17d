import Atomics
import CPooldShim
import Foundation
import PoolIPC
import PoolProtocol

/// The notebook's first Counter cell ("Using critical sections"): each worker, twice, sleeps a
/// random 0-1 s, waits for the lock, increments the shared counter under it; then says Done. The
/// last to finish prints the counter. Every step is a line of the job's log, in the notebook's
/// words, and a record in the journal.
struct LockCellJob: JobKind {
    let workers: Int
    let increments: Int
    let pause: ClosedRange<Int64>
    let seed: UInt64
    static let code: UInt32 = 6
    var totalWork: Int { workers * increments }
    /// Per worker: sleeping, waiting and acquired per increment, then Done; then the counter.
    var lineCount: Int { Self.lineCount(workers: workers, increments: increments) }
    static func lineCount(workers: Int, increments: Int) -> Int { workers * (3 * increments + 1) + 1 }

    /// The kind area, `pool_lockcell_area`, then the job's log: a `pool_lockcell_trace_entry` per line.
    typealias Area = pool_lockcell_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    static func trace(in area: UnsafeMutablePointer<Area>) -> UnsafeMutablePointer<pool_lockcell_trace_entry> {
        area.end.layout(pool_lockcell_trace_entry.self)
    }

    enum Step: UInt32 {
        case sleeping = 1, waiting, acquired, done, counter
    }

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> LockCellJob {
        var reader = try ParameterReader(parameters)
        let workers = try reader.int("workers", default: 2, in: 1...JobLimits.maxWorkerCount)
        let increments = try reader.int("increments", default: 2, in: 1...10_000)
        let pause = try reader.durationRange("pause", default: 0...1_000_000_000, max: 60_000_000_000)
        // The notebook's random.random() differs each run; a seed repeats one (below 2^53: it is
        // reported as a JSON number).
        let seed = try reader.int("seed", default: Int.random(in: 0..<(1 << 53)), in: 0...(1 << 53))
        try reader.finish(kind: Self.name)
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        return LockCellJob(workers: workers, increments: increments, pause: pause, seed: UInt64(seed))
    }

    var parameters: JSONValue {
        let range = pause.lowerBound == pause.upperBound ? DurationText.format(pause.lowerBound)
            : DurationText.format(pause.lowerBound) + ".." + DurationText.format(pause.upperBound)
        return JSONValue(reporting: LockCellParameters(workers: workers, increments: increments, pause: range, seed: Int(seed)))
    }

    var kindAreaSize: Int { MemoryLayout<Area>.size + lineCount * MemoryLayout<pool_lockcell_trace_entry>.stride }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = Self.area(of: segment)
        area.pointee.increments = Int64(increments)
        area.pointee.pauseLow = pause.lowerBound
        area.pointee.pauseHigh = pause.upperBound
        area.pointee.seed = seed
        try segment.initializeMutex(area.field(\.mutex))
    }

    func logLineCount(segment: JobSegment) -> Int {
        min(Int(Self.area(of: segment).atomic(\.traceNext).load(ordering: .acquiring)), lineCount)
    }

    func logLines(segment: JobSegment, from start: Int) -> [String] {
        let written = logLineCount(segment: segment)
        guard start < written else { return [] }
        let trace = Self.trace(in: Self.area(of: segment))
        var lines: [String] = []
        for index in start..<written {
            let entry = trace + index
            guard entry.atomic(\.time).load(ordering: .acquiring) != 0,
                  let step = Step(rawValue: entry.pointee.step) else { break }
            let participant = Int(entry.pointee.participant)
            let slot = Int(segment.participant(participant).slot.load(ordering: .relaxed))
            lines.append(Self.line(step, value: entry.pointee.value, slot: slot))
        }
        return lines
    }

    /// The notebook's `(%(threadName)-10s) %(message)s`, a worker's slot in place of the thread.
    static func line(_ step: Step, value: Int64, slot: Int) -> String {
        guard step != .counter else { return message(step, value: value) }
        let name = "slot \(slot)"
        return "(\(name.padding(toLength: max(10, name.count), withPad: " ", startingAt: 0))) \(message(step, value: value))"
    }

    static func message(_ step: Step, value: Int64) -> String {
        switch step {
        case .sleeping: return String(format: "Sleeping %0.02f", Double(value) / 1e9)
        case .waiting: return "Waiting for lock"
        case .acquired: return "Acquired lock"
        case .done: return "Done"
        case .counter: return "Counter: \(value)"
        }
    }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> LockCellResult {
        let counter = Self.area(of: segment).atomic(\.counter).load(ordering: .acquiring)
        let entries = (0..<workers).map { index in
            let participant = segment.participant(index)
            return LockCellWorker(participant: index, slot: Int(participant.slot.load(ordering: .relaxed)),
                                  pid: Int(participant.pid.load(ordering: .relaxed)), increments: Int(participant.done.load(ordering: .relaxed)))
        }
        let recoveries = (0..<workers).reduce(0) { $0 + Int(segment.participant($1).extra.load(ordering: .relaxed)) }
        return LockCellResult(counter: Int(counter), expected: workers * increments, lockRecoveries: recoveries, workers: entries)
    }
}

extension LockCellJob {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let segment = context.segment, area = Self.area(of: segment)
        let increments = Int(area.pointee.increments)
        let pause = area.pointee.pauseLow...area.pointee.pauseHigh
        var random = SplitMix64(seed: area.pointee.seed &+ UInt64(context.participant) &* 0x9E37_79B9)
        let mutex = RobustMutex(area.field(\.mutex))
        let counter = area.atomic(\.counter)
        let trace = { (step: Step, value: Int64) in Self.trace(step, value: value, increments: increments, context: context) }
        for done in 1...increments {
            let nanos = Int64.random(in: pause, using: &random)
            trace(.sleeping, nanos)
            guard segment.pause(nanoseconds: nanos, beating: context.record) else { return .cancelled }
            trace(.waiting, 0)
            guard lock(mutex, context: context) else { return .failed }
            trace(.acquired, 0)
            counter.store(counter.load(ordering: .relaxed) + 1, ordering: .relaxed)
            mutex.unlock()
            context.mine.done.store(Int64(done), ordering: .relaxed)
        }
        trace(.done, 0)
        // The notebook's main thread joins the workers and prints the counter; here the last
        // worker to finish does, under the lock (every increment is in).
        if area.atomic(\.finished).wrappingIncrementThenLoad(ordering: .acquiringAndReleasing) == Int64(segment.participants) {
            guard lock(mutex, context: context) else { return .failed }
            let value = counter.load(ordering: .relaxed)
            mutex.unlock()
            trace(.counter, value)
        }
        return .completed
    }

    /// A holder that died (EOWNERDEAD) may or may not have incremented: the job fails on its
    /// death anyway (it does not resume), so the lock is only made usable again and counted.
    private static func lock(_ mutex: RobustMutex, context: ParticipantContext) -> Bool {
        do {
            if try mutex.lock() == .recoveredFromDeadOwner { context.mine.extra.wrappingIncrement(ordering: .relaxed) }
            return true
        } catch {
            _ = context.fail("cannot take the job's lock: \(error)", errno: error.errno)
            return false
        }
    }

    /// Adds a line to the job's log in the segment, and to the journal (where the record's fields
    /// say which slot).
    private static func trace(_ step: Step, value: Int64, increments: Int, context: ParticipantContext) {
        context.logger.info("\(message(step, value: value))")
        let area = Self.area(of: context.segment)
        let index = Int(area.atomic(\.traceNext).loadThenWrappingIncrement(ordering: .relaxed))
        guard index < lineCount(workers: context.segment.participants, increments: increments) else { return }
        let entry = Self.trace(in: area) + index
        entry.pointee.step = step.rawValue
        entry.pointee.participant = UInt32(context.participant)
        entry.pointee.value = value
        entry.atomic(\.time).store(MonotonicClock.nanoseconds, ordering: .releasing)
    }
}
