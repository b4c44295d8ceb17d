import Atomics
import CPooldShim
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

    /// The kind area, `pool_tasks_area`, then a `pool_task_record` per task.
    typealias Area = pool_tasks_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    static func tasks(in area: UnsafeMutablePointer<Area>) -> UnsafeMutablePointer<pool_task_record> {
        area.end.layout(pool_task_record.self)
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

    var kindAreaSize: Int { MemoryLayout<Area>.size + count * MemoryLayout<pool_task_record>.stride }

    func createSegment(name: String) throws(IPCError) -> JobSegment {
        let segment = try JobSegment.create(name: name, kind: kind.rawValue, participants: workers, kindAreaSize: kindAreaSize)
        let area = Self.area(of: segment)
        area.pointee.count = Int64(count)
        area.pointee.createdNanos = MonotonicClock.nanoseconds
        return segment
    }

    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> JSONValue {
        let area = Self.area(of: segment)
        let created = area.pointee.createdNanos
        let records = Self.tasks(in: area)
        var tasks: [JSONValue] = []
        var last: Int64 = created
        for index in 0..<count {
            let entry = records[index]
            let started = entry.startedNanos
            guard started > 0 else { continue }
            last = max(last, started)
            tasks.append(.object([
                "index": .number(Double(index)),
                "participant": .number(Double(entry.participant)),
                "slot": .number(Double(entry.slot)),
                "pid": .number(Double(entry.pid)),
                "waitMicros": .number(Double((started - created) / 1000)),
            ]))
        }
        return .object(["count": .number(Double(count)), "ran": .number(Double(tasks.count)), "tasks": .array(tasks)])
    }
}

extension TasksJob: JobParticipantWork {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let area = Self.area(of: context.segment)
        let count = Int(area.pointee.count)
        let records = Self.tasks(in: area)
        let pid = Int32(context.mine.pid.load(ordering: .relaxed))
        var done: Int64 = 0
        for index in stride(from: context.participant, to: count, by: context.segment.participants) {
            if context.segment.isCancelled { break }
            let entry = records + index
            entry.pointee.slot = Int32(context.slot)
            entry.pointee.pid = pid
            entry.pointee.participant = Int64(context.participant)
            entry.pointee.startedNanos = MonotonicClock.nanoseconds
            context.logger.info("I'm the task \(index)")
            done += 1
            context.mine.done.store(done, ordering: .relaxed)
        }
        return context.segment.isCancelled ? .cancelled : .completed
    }
}
