/// The state of one worker slot, as the supervisor's state machine sees it.
public enum WorkerState: String, Codable, Sendable, CaseIterable {
    /// Spawned; not yet said "ready" over the event queue.
    case starting
    /// Idle and able to take work.
    case ready
    case busy
    /// Asked to exit (shrinking or shutting down).
    case stopping
    /// Died; waiting out the backoff before the next spawn.
    case backoff
    /// Died too often within the window, or exited with the "do not respawn" status.
    case failed
}

public struct WorkerInfo: Codable, Sendable, Equatable {
    public var slot: Int
    public var pid: Int
    public var state: WorkerState
    public var job: Int?
    public var restarts: Int
    public var lastExit: String?

    public init(slot: Int, pid: Int, state: WorkerState, job: Int?, restarts: Int, lastExit: String?) {
        self.slot = slot
        self.pid = pid
        self.state = state
        self.job = job
        self.restarts = restarts
        self.lastExit = lastExit
    }
}

public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled
    /// Was queued or running when the daemon died (crash, SIGKILL, power loss); found so in the job
    /// history at the next start. Final, like the three before it.
    case interrupted

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled || self == .interrupted }
}

public struct JobProgress: Codable, Sendable, Equatable {
    public var done: Int
    public var total: Int
    /// prodcons: messages in the queue now (its capacity is the `capacity` parameter).
    public var queueDepth: Int?
    /// event: participants blocked on the event, and those it has woken so far.
    public var waiting: Int?
    public var woken: Int?
    /// append with shared memory: the string so far (its last `textWindow` characters when longer).
    public var text: String?

    public static let textWindow = 1000

    public init(done: Int, total: Int, queueDepth: Int? = nil, waiting: Int? = nil, woken: Int? = nil,
                text: String? = nil) {
        self.done = done
        self.total = total
        self.queueDepth = queueDepth
        self.waiting = waiting
        self.woken = woken
        self.text = text
    }
}

/// A job as clients see it. `parameters` and `result` are kind-specific objects.
public struct JobRecord: Codable, Sendable, Equatable {
    public var id: Int
    public var kind: String
    public var state: JobState
    public var parameters: JSONValue
    public var slots: [Int]
    public var submittedAt: String
    public var startedAt: String?
    public var finishedAt: String?
    public var progress: JobProgress?
    public var result: JSONValue?
    public var error: String?
    /// The job's own log lines (such as a prodcons trace), in order.
    public var log: [String]?
    /// While the job runs, its record carries only the latest lines: this is the number of lines
    /// before the first of `log` (nil: `log` starts at the first line).
    public var logOffset: Int?
    /// While the job is queued: what it waits for ("waiting for 2 idle workers; 1 idle, 1 busy
    /// with job 4").
    public var waiting: String?

    public init(id: Int, kind: String, state: JobState, parameters: JSONValue, slots: [Int], submittedAt: String,
                startedAt: String? = nil, finishedAt: String? = nil, progress: JobProgress? = nil,
                result: JSONValue? = nil, error: String? = nil, log: [String]? = nil, logOffset: Int? = nil,
                waiting: String? = nil) {
        self.id = id
        self.kind = kind
        self.state = state
        self.parameters = parameters
        self.slots = slots
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.progress = progress
        self.result = result
        self.error = error
        self.log = log
        self.logOffset = logOffset
        self.waiting = waiting
    }
}

public struct StatusReply: Codable, Sendable, Equatable {
    public var pid: Int
    public var version: String
    public var poolSize: Int
    public var workers: [WorkerInfo]
    public var jobsQueued: Int
    public var jobsRunning: Int
    public var jobsFinished: Int
    public var uptimeSeconds: Double
    /// Set while the daemon shuts down (SIGTERM, SIGINT, Shutdown).
    public var drain: DrainInfo?
    /// The job history on disk; nil when the daemon keeps none.
    public var history: HistoryStatus?
    /// The pool's identity in the journal (POOLD_INSTANCE): the same across restarts on one state
    /// directory, different for another daemon.
    public var instance: String?
    /// The running jobs with their progress, without their logs (nil: none runs).
    public var runningJobs: [JobRecord]?

    public init(pid: Int, version: String, poolSize: Int, workers: [WorkerInfo], jobsQueued: Int, jobsRunning: Int,
                jobsFinished: Int, uptimeSeconds: Double, drain: DrainInfo? = nil, history: HistoryStatus? = nil,
                instance: String? = nil, runningJobs: [JobRecord]? = nil) {
        self.pid = pid
        self.version = version
        self.poolSize = poolSize
        self.workers = workers
        self.jobsQueued = jobsQueued
        self.jobsRunning = jobsRunning
        self.jobsFinished = jobsFinished
        self.uptimeSeconds = uptimeSeconds
        self.drain = drain
        self.history = history
        self.instance = instance
        self.runningJobs = runningJobs
    }
}

/// How the job history on disk fares: whether what the daemon holds is being written, and the
/// last trouble it had (a damaged file found at start, the state directory removed, writes that
/// failed for a while).
public struct HistoryStatus: Codable, Sendable, Equatable {
    /// The database file.
    public var path: String
    /// While the history cannot be written: why, and what is done about it. Nil when it can.
    public var problem: String?
    /// The last problem the history had and how it was resolved, with its time (UTC).
    public var lastIncident: String?
    /// Job records held in memory that are not written yet.
    public var unwrittenJobs: Int

    public init(path: String, problem: String? = nil, lastIncident: String? = nil, unwrittenJobs: Int = 0) {
        self.path = path
        self.problem = problem
        self.lastIncident = lastIncident
        self.unwrittenJobs = unwrittenJobs
    }
}

/// Job ids: 1, 2, 3 ... up to the largest integer every JSON reader holds exactly (2^53 - 1), so
/// that no client ever sees an id rounded; a larger one read from disk is set aside.
public enum JobID {
    public static let maximum = (1 << 53) - 1
    public static let valid = 1...maximum
}

public struct RunRequest: Codable, Sendable {
    public var kind: String
    public var parameters: JSONValue?
    public var detach: Bool?
    /// The longest the job may run once started, as a duration (`30s`, `500ms`); then it is
    /// cancelled and fails.
    public var timeout: String?

    public init(kind: String, parameters: JSONValue?, detach: Bool? = nil, timeout: String? = nil) {
        self.kind = kind
        self.parameters = parameters
        self.detach = detach
        self.timeout = timeout
    }
}

public struct JobReply: Codable, Sendable {
    public var job: JobRecord
    public init(job: JobRecord) { self.job = job }
}

public struct JobIDRequest: Codable, Sendable {
    public var id: Int
    public init(id: Int) { self.id = id }
}

public struct ListJobsRequest: Codable, Sendable {
    public var limit: Int?
    /// Only jobs in this state (queued, running, succeeded, failed, cancelled, interrupted).
    public var state: String?
    /// Only jobs of this kind.
    public var kind: String?

    public init(limit: Int? = nil, state: String? = nil, kind: String? = nil) {
        self.limit = limit
        self.state = state
        self.kind = kind
    }
}

/// What a reload of the configuration file did, each entry as `key = value`.
public struct ReloadReply: Codable, Sendable, Equatable {
    public var configurationFile: String
    /// Changed and in effect now.
    public var applied: [String]
    /// Changed, in effect from the next start.
    public var pending: [String]
    /// Changed in the file but set on the daemon's command line, which wins.
    public var ignored: [String]

    public init(configurationFile: String, applied: [String] = [], pending: [String] = [], ignored: [String] = []) {
        self.configurationFile = configurationFile
        self.applied = applied
        self.pending = pending
        self.ignored = ignored
    }
}

public struct ListJobsReply: Codable, Sendable {
    public var jobs: [JobRecord]
    public init(jobs: [JobRecord]) { self.jobs = jobs }
}

public struct ResizeRequest: Codable, Sendable {
    public var workers: Int
    public init(workers: Int) { self.workers = workers }
}

public struct ResizeReply: Codable, Sendable {
    public var poolSize: Int
    public var workers: [WorkerInfo]
    public init(poolSize: Int, workers: [WorkerInfo]) {
        self.poolSize = poolSize
        self.workers = workers
    }
}

public struct RestartWorkersRequest: Codable, Sendable {
    /// The slots whose workers to replace; nil: every slot.
    public var slots: [Int]?
    public init(slots: [Int]? = nil) { self.slots = slots }
}

public struct RestartWorkersReply: Codable, Sendable {
    public var poolSize: Int
    public var workers: [WorkerInfo]
    /// Slots that have a new worker (a failed slot brought back included), in order.
    public var restarted: [Int]
    /// Busy slots: their worker is replaced when its job ends.
    public var afterJob: [Int]

    public init(poolSize: Int, workers: [WorkerInfo], restarted: [Int], afterJob: [Int]) {
        self.poolSize = poolSize
        self.workers = workers
        self.restarted = restarted
        self.afterJob = afterJob
    }
}

public struct ServiceInfo: Codable, Sendable {
    public var vendor: String
    public var product: String
    public var version: String
    public var url: String
    public var interfaces: [String]

    public init(vendor: String, product: String, version: String, url: String, interfaces: [String]) {
        self.vendor = vendor
        self.product = product
        self.version = version
        self.url = url
        self.interfaces = interfaces
    }
}

public struct InterfaceDescriptionRequest: Codable, Sendable {
    public var interface: String
    public init(interface: String) { self.interface = interface }
}

public struct InterfaceDescriptionReply: Codable, Sendable {
    public var description: String
    public init(description: String) { self.description = description }
}
