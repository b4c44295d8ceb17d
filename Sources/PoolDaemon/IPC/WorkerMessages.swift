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
    /// `quietFlag`: the job's info lines are not logged (JobLogLimiter); failures still are.
    public var flags: UInt32
    /// The job's segment (`JobSegment.id`): the job's own id when it was made for this job, an
    /// earlier job's when it is reused.
    public var segmentID: UInt64

    public static let quietFlag: UInt32 = 1

    /// `segmentID` nil: the segment made for this job.
    public init(kind: Kind, jobID: Int = 0, segmentID: Int? = nil, participant: Int = 0, attempt: Int = 0, quiet: Bool = false) {
        self.kindRaw = kind.rawValue
        self.participant = UInt32(participant)
        self.jobID = UInt64(jobID)
        self.attempt = UInt32(attempt)
        self.flags = quiet ? Self.quietFlag : 0
        self.segmentID = UInt64(segmentID ?? jobID)
    }

    public var kind: Kind? { Kind(rawValue: kindRaw) }
    public var isQuiet: Bool { flags & Self.quietFlag != 0 }
}

/// What a worker tells the daemon over the shared event queue.
public struct WorkerEvent: BitwiseCopyable, Sendable {
    public enum Kind: UInt32, Sendable {
        /// The worker has opened its IPC objects and waits for commands.
        case ready = 1
        /// The worker's part of a job ended; `outcome` says how.
        case jobEnded = 2
    }

    public enum Outcome: UInt32, Sendable {
        case completed = 0
        case cancelled = 1
        /// `reason` says why; `errorCode` holds the errno of the failed call, when there was one.
        case failed = 2
    }

    /// The longest reason an event carries, in UTF-8 bytes (a longer one is cut).
    public static let reasonCapacity = 200

    public var kindRaw: UInt32
    public var slot: UInt32
    public var pid: Int32
    public var outcomeRaw: UInt32
    public var jobID: UInt64
    public var errorCode: Int32
    public var reasonLength: UInt32 = 0
    /// A failure's reason, as the worker's log has it: the daemon puts it in the job's `error`.
    public var reasonBytes = InlineArray<200, UInt8>(repeating: 0)

    public init(kind: Kind, slot: Int, pid: Int32, jobID: Int = 0, outcome: Outcome = .completed, errorCode: Int32 = 0,
                reason: String = "") {
        self.kindRaw = kind.rawValue
        self.slot = UInt32(slot)
        self.pid = pid
        self.outcomeRaw = outcome.rawValue
        self.jobID = UInt64(jobID)
        self.errorCode = errorCode
        // Cut on a character boundary, so that what arrives is valid UTF-8.
        var length = 0
        for character in reason {
            let bytes = character.utf8.count
            guard length + bytes <= Self.reasonCapacity else { break }
            for byte in character.utf8 {
                reasonBytes[length] = byte
                length += 1
            }
        }
        reasonLength = UInt32(length)
    }

    public var kind: Kind? { Kind(rawValue: kindRaw) }
    public var outcome: Outcome { Outcome(rawValue: outcomeRaw) ?? .failed }

    public var reason: String {
        let length = min(Int(reasonLength), Self.reasonCapacity)
        return String(decoding: (0..<length).map { reasonBytes[$0] }, as: UTF8.self)
    }
}
