import Atomics
import Foundation
import PoolIPC
import PoolProtocol

/// The notebook's first Counter cell ("Using critical sections"): each worker, twice, sleeps a
/// random 0-1 s, waits for the lock, increments the shared counter under it; then says Done. The
/// last to finish prints the counter. Every step is a line of the job's log, in the notebook's
/// words, and a record in the journal.
struct LockCellJob: JobPlan {
    let workers: Int
    let increments: Int
    let pause: ClosedRange<Int64>
    let seed: UInt64
    var kind: JobKindCode { .lockcell }
    var totalWork: Int { workers * increments }
    /// Per worker: sleeping, waiting and acquired per increment, then Done; then the counter.
    var lineCount: Int { Self.lineCount(workers: workers, increments: increments) }
    static func lineCount(workers: Int, increments: Int) -> Int { workers * (3 * increments + 1) + 1 }

    enum Area {
        static let increments = 0, pauseLow = 8, pauseHigh = 16, seed = 24
        static let counter = 64         // Int64, under the mutex
        static let finished = 128       // Int64, atomic: workers that said Done
        static let traceNext = 192      // Int64, atomic: the next trace entry
        static let mutex = 256          // pthread_mutex_t
        static var trace: Int { mutex + (RobustMutex.size + 63) / 64 * 64 }
        /// step UInt32, participant UInt32, value Int64, time Int64 (written last: the entry is complete)
        static let traceEntrySize = 24
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
        try reader.finish(kind: "lockcell")
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        return LockCellJob(workers: workers, increments: increments, pause: pause, seed: UInt64(seed))
    }

    var parameters: JSONValue {
        let range = pause.lowerBound == pause.upperBound ? DurationText.format(pause.lowerBound)
            : DurationText.format(pause.lowerBound) + ".." + DurationText.format(pause.upperBound)
        return .object(["workers": .number(Double(workers)), "increments": .number(Double(increments)),
                        "pause": .string(range), "seed": .number(Double(seed))])
    }

    var kindAreaSize: Int { Area.trace + lineCount * Area.traceEntrySize }

    func createSegment(name: String) throws(IPCError) -> JobSegment {
        let segment = try JobSegment.create(name: name, kind: kind.rawValue, participants: workers, kindAreaSize: kindAreaSize)
        let area = segment.kindArea
        area.storeBytes(of: Int64(increments), toByteOffset: Area.increments, as: Int64.self)
        area.storeBytes(of: pause.lowerBound, toByteOffset: Area.pauseLow, as: Int64.self)
        area.storeBytes(of: pause.upperBound, toByteOffset: Area.pauseHigh, as: Int64.self)
        area.storeBytes(of: seed, toByteOffset: Area.seed, as: UInt64.self)
        try segment.initializeMutex(atKindOffset: Area.mutex)
        return segment
    }

    func logLineCount(segment: JobSegment) -> Int {
        min(Int(Self.atomic(segment.kindArea + Area.traceNext).load(ordering: .acquiring)), lineCount)
    }

    func logLines(segment: JobSegment, from start: Int) -> [String] {
        let written = logLineCount(segment: segment)
        guard start < written else { return [] }
        var lines: [String] = []
        for index in start..<written {
            let entry = segment.kindArea + Area.trace + index * Area.traceEntrySize
            guard Self.atomic(entry + 16).load(ordering: .acquiring) != 0,
                  let step = Step(rawValue: entry.load(fromByteOffset: 0, as: UInt32.self)) else { break }
            let participant = Int(entry.load(fromByteOffset: 4, as: UInt32.self))
            let slot = Int(segment.participant(participant).slot.load(ordering: .relaxed))
            lines.append(Self.line(step, value: entry.load(fromByteOffset: 8, as: Int64.self), slot: slot))
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

    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> JSONValue {
        let counter = Self.atomic(segment.kindArea + Area.counter).load(ordering: .acquiring)
        let entries = (0..<workers).map { index -> JSONValue in
            let participant = segment.participant(index)
            return .object(["participant": .number(Double(index)),
                            "slot": .number(Double(participant.slot.load(ordering: .relaxed))),
                            "pid": .number(Double(participant.pid.load(ordering: .relaxed))),
                            "increments": .number(Double(participant.done.load(ordering: .relaxed)))])
        }
        let recoveries = (0..<workers).reduce(0) { $0 + Int(segment.participant($1).extra.load(ordering: .relaxed)) }
        return .object(["counter": .number(Double(counter)), "expected": .number(Double(workers * increments)),
                        "lockRecoveries": .number(Double(recoveries)), "workers": .array(entries)])
    }

    static func atomic(_ pointer: UnsafeMutableRawPointer) -> UnsafeAtomic<Int64> {
        UnsafeAtomic(at: pointer.assumingMemoryBound(to: Int64.AtomicRepresentation.self))
    }
}

extension LockCellJob: JobParticipantWork {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let segment = context.segment, area = segment.kindArea
        let increments = Int(area.load(fromByteOffset: Area.increments, as: Int64.self))
        let pause = area.load(fromByteOffset: Area.pauseLow, as: Int64.self)...area.load(fromByteOffset: Area.pauseHigh, as: Int64.self)
        var random = SplitMix64(seed: area.load(fromByteOffset: Area.seed, as: UInt64.self) &+ UInt64(context.participant) &* 0x9E37_79B9)
        let mutex = RobustMutex(at: area + Area.mutex)
        let counter = atomic(area + Area.counter)
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
            context.record.progress.store(Int64(done), ordering: .relaxed)
        }
        trace(.done, 0)
        // The notebook's main thread joins the workers and prints the counter; here the last
        // worker to finish does, under the lock (every increment is in).
        if atomic(area + Area.finished).wrappingIncrementThenLoad(ordering: .acquiringAndReleasing) == Int64(segment.participants) {
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
        let area = context.segment.kindArea
        let index = Int(atomic(area + Area.traceNext).loadThenWrappingIncrement(ordering: .relaxed))
        guard index < lineCount(workers: context.segment.participants, increments: increments) else { return }
        let entry = area + Area.trace + index * Area.traceEntrySize
        entry.storeBytes(of: step.rawValue, toByteOffset: 0, as: UInt32.self)
        entry.storeBytes(of: UInt32(context.participant), toByteOffset: 4, as: UInt32.self)
        entry.storeBytes(of: value, toByteOffset: 8, as: Int64.self)
        atomic(entry + 16).store(MonotonicClock.nanoseconds, ordering: .releasing)
    }
}
