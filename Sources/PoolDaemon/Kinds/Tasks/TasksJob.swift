import Atomics
import PoolIPC
import PoolProtocol

/// The notebook's "passing arguments to threads": task i runs somewhere and says `I'm the task i`.
/// Task i goes to participant i mod n, so the lines come from every worker, as the notebook's come
/// from ten threads. (Taking the next index from a shared counter gave every task to the first
/// worker to wake.)
struct TasksJob: JobPlan {
    let count: Int
    let workers: Int
    var kind: JobKindCode { .tasks }
    var totalWork: Int { count }

    enum Area {
        static let count = 0        // Int64
        static let created = 128    // Int64: monotonic nanoseconds when the job was set up
        static let tasks = 192      // per task: slot Int32, pid Int32, startedNanos Int64, participant Int64
        static let taskSize = 24
    }

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> TasksJob {
        var reader = try ParameterReader(parameters)
        let count = try reader.int("count", default: 10, in: 1...100_000)
        let workers = try reader.int("workers", default: min(count, limits.poolSize), in: 1...JobLimits.maxWorkerCount)
        try reader.finish(kind: "tasks")
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        return TasksJob(count: count, workers: min(workers, count))
    }

    var parameters: JSONValue { .object(["count": .number(Double(count)), "workers": .number(Double(workers))]) }

    var kindAreaSize: Int { Area.tasks + count * Area.taskSize }

    func createSegment(name: String) throws(IPCError) -> JobSegment {
        let segment = try JobSegment.create(name: name, kind: kind.rawValue, participants: workers, kindAreaSize: kindAreaSize)
        segment.kindArea.storeBytes(of: Int64(count), toByteOffset: Area.count, as: Int64.self)
        segment.kindArea.storeBytes(of: MonotonicClock.nanoseconds, toByteOffset: Area.created, as: Int64.self)
        return segment
    }

    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> JSONValue {
        let area = segment.kindArea
        let created = area.load(fromByteOffset: Area.created, as: Int64.self)
        var tasks: [JSONValue] = []
        var last: Int64 = created
        for index in 0..<count {
            let entry = area + Area.tasks + index * Area.taskSize
            let started = entry.load(fromByteOffset: 8, as: Int64.self)
            guard started > 0 else { continue }
            last = max(last, started)
            tasks.append(.object([
                "index": .number(Double(index)),
                "participant": .number(Double(entry.load(fromByteOffset: 16, as: Int64.self))),
                "slot": .number(Double(entry.load(fromByteOffset: 0, as: Int32.self))),
                "pid": .number(Double(entry.load(fromByteOffset: 4, as: Int32.self))),
                "waitMicros": .number(Double((started - created) / 1000)),
            ]))
        }
        return .object(["count": .number(Double(count)), "ran": .number(Double(tasks.count)), "tasks": .array(tasks)])
    }
}

extension TasksJob: JobParticipantWork {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let area = context.segment.kindArea
        let count = Int(area.load(fromByteOffset: Area.count, as: Int64.self))
        let pid = Int32(context.mine.pid.load(ordering: .relaxed))
        var done: Int64 = 0
        for index in stride(from: context.participant, to: count, by: context.segment.participants) {
            if context.segment.isCancelled { break }
            let entry = area + Area.tasks + index * Area.taskSize
            entry.storeBytes(of: Int32(context.slot), toByteOffset: 0, as: Int32.self)
            entry.storeBytes(of: pid, toByteOffset: 4, as: Int32.self)
            entry.storeBytes(of: Int64(context.participant), toByteOffset: 16, as: Int64.self)
            entry.storeBytes(of: MonotonicClock.nanoseconds, toByteOffset: 8, as: Int64.self)
            context.logger.info("I'm the task \(index)")
            done += 1
            context.mine.done.store(done, ordering: .relaxed)
        }
        return context.segment.isCancelled ? .cancelled : .completed
    }
}
