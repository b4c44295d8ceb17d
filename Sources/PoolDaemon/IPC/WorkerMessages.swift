/// What the daemon tells a worker over the worker's command queue. Fixed-size and plain, so that it
/// crosses the queue without encoding; job parameters live in the job's shared segment.
public struct WorkerCommand: BitwiseCopyable, Sendable, Equatable {
    public enum Kind: UInt32, Sendable { case runJob = 1, exit = 2 }

    public var kindRaw: UInt32
    /// This worker's index among the job's participants.
    public var participant: UInt32
    public var jobID: UInt64
    /// 0 for the participant's first worker; n for the n-th replacement of one that died, which
    /// resumes from what its predecessor left in the job's segment.
    public var attempt: UInt32
    public var reserved: UInt32 = 0

    public init(kind: Kind, jobID: Int = 0, participant: Int = 0, attempt: Int = 0) {
        self.kindRaw = kind.rawValue
        self.participant = UInt32(participant)
        self.jobID = UInt64(jobID)
        self.attempt = UInt32(attempt)
    }

    public var kind: Kind? { Kind(rawValue: kindRaw) }
}

/// What a worker tells the daemon over the shared event queue.
public struct WorkerEvent: BitwiseCopyable, Sendable, Equatable {
    public enum Kind: UInt32, Sendable {
        /// The worker has opened its IPC objects and waits for commands.
        case ready = 1
        /// The worker's part of a job ended; `outcome` says how.
        case jobEnded = 2
    }

    public enum Outcome: UInt32, Sendable {
        case completed = 0
        case cancelled = 1
        /// `errorCode` holds the errno of the failed call.
        case failed = 2
    }

    public var kindRaw: UInt32
    public var slot: UInt32
    public var pid: Int32
    public var outcomeRaw: UInt32
    public var jobID: UInt64
    public var errorCode: Int32
    public var reserved: UInt32 = 0

    public init(kind: Kind, slot: Int, pid: Int32, jobID: Int = 0, outcome: Outcome = .completed, errorCode: Int32 = 0) {
        self.kindRaw = kind.rawValue
        self.slot = UInt32(slot)
        self.pid = pid
        self.outcomeRaw = outcome.rawValue
        self.jobID = UInt64(jobID)
        self.errorCode = errorCode
    }

    public var kind: Kind? { Kind(rawValue: kindRaw) }
    public var outcome: Outcome { Outcome(rawValue: outcomeRaw) ?? .failed }
}
