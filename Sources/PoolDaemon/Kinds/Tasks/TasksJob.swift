import Atomics
import CPooldShim
import PoolIPC
import PoolProtocol

/// The notebook's "passing arguments to threads": task i runs somewhere and says `I'm the task i`.
/// Task i goes to participant i mod n, so the lines come from every worker, as the notebook's come
/// from ten threads. (Taking the next index from a shared counter gave every task to the first
/// worker to wake.)
struct TasksJob: JobKind {
    let count: Int
    let workers: Int
    static let code: UInt32 = 4
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
        try reader.finish(kind: Self.name)
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        return TasksJob(count: count, workers: min(workers, count))
    }

    var parameters: JSONValue { JSONValue(reporting: TasksParameters(count: count, workers: workers)) }

    var kindAreaSize: Int { MemoryLayout<Area>.size + count * MemoryLayout<pool_task_record>.stride }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = Self.area(of: segment)
        area.pointee.count = Int64(count)
        area.pointee.createdNanos = MonotonicClock.nanoseconds
    }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> TasksResult {
        let area = Self.area(of: segment)
        let created = area.pointee.createdNanos
        let records = Self.tasks(in: area)
        let tasks = (0..<count).compactMap { index -> TaskRun? in
            let entry = records[index]
            guard entry.startedNanos > 0 else { return nil }
            return TaskRun(index: index, participant: Int(entry.participant), slot: Int(entry.slot), pid: Int(entry.pid),
                           waitMicros: Int((entry.startedNanos - created) / 1000))
        }
        return TasksResult(count: count, ran: tasks.count, tasks: tasks)
    }
}

extension TasksJob {
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
