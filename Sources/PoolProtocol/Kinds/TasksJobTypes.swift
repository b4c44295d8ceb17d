/// The tasks job's parameters as a job reports them (every default filled in).
public struct TasksParameters: Codable, Sendable, Equatable {
    public var count: Int
    public var workers: Int

    public init(count: Int, workers: Int) {
        self.count = count
        self.workers = workers
    }
}

/// Which participant ran each task, and when.
public struct TasksResult: JobResult {
    public static let kind = "tasks"

    public var count: Int
    /// Tasks that started (fewer than `count` when the job was cancelled).
    public var ran: Int
    /// The tasks that started, by index.
    public var tasks: [TaskRun]

    public init(count: Int, ran: Int, tasks: [TaskRun]) {
        self.count = count
        self.ran = ran
        self.tasks = tasks
    }
}

public struct TaskRun: Codable, Sendable, Equatable {
    public var index: Int
    public var participant: Int
    public var slot: Int
    public var pid: Int
    /// From the job's setup to the task's start.
    public var waitMicros: Int

    public init(index: Int, participant: Int, slot: Int, pid: Int, waitMicros: Int) {
        self.index = index
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.waitMicros = waitMicros
    }
}

extension TasksResult {
    public var summary: String { "\(ran) of \(count) tasks ran" }
}
