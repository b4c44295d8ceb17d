/// A job kind's result as a type of its own: the daemon builds it, poolctl and the summaries decode
/// it. On the wire it is the `result` object of a Job record (varlink `object`).
public protocol JobResult: Codable, Sendable, Equatable {
    /// The kind's name, as Run takes it and records show it.
    static var kind: String { get }
    /// The outcome in one line, as `poolctl jobs` lists it and the journal record of the job's end
    /// says it.
    var summary: String { get }
}

/// Every kind's result type: where a kind name is looked up, in the order the kinds are listed.
public enum JobResults {
    public static let all: [any JobResult.Type] = [
        CounterResult.self, ProdConsResult.self, EventResult.self, TasksResult.self, AppendResult.self,
        LockCellResult.self,
    ]

    public static func type(ofKind kind: String) -> (any JobResult.Type)? {
        all.first { $0.kind == kind }
    }
}

/// A worker that died while it ran a part of the job. The daemon adds the list (`deadWorkers`) to
/// the result of a job of any kind that had one.
public struct DeadWorkerRecord: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var pid: Int
    /// How it ended ("killed by SIGKILL", "exited with status 3").
    public var exit: String
    /// Whether a replacement finished its part (else the job failed).
    public var replaced: Bool

    public init(participant: Int, slot: Int, pid: Int, exit: String, replaced: Bool) {
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.exit = exit
        self.replaced = replaced
    }

    /// Read leniently: a record may come from a damaged or hand-edited history file, and what can
    /// be said of a death is shown (a number no Int holds clamped, a missing field as unknown)
    /// rather than none of the job's deaths.
    public init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: CodingKeys.self)
        func integer(_ key: CodingKeys) -> Int {
            guard let number = try? fields.decodeIfPresent(Double.self, forKey: key) else { return -1 }
            return Int(min(max(number, -9.0e18), 9.0e18))
        }
        participant = integer(.participant)
        slot = integer(.slot)
        pid = integer(.pid)
        exit = (try? fields.decodeIfPresent(String.self, forKey: .exit)) ?? "?"
        replaced = (try? fields.decodeIfPresent(Bool.self, forKey: .replaced)) ?? false
    }
}

/// The part every kind's result may have: the workers that died during the job.
public struct DeadWorkersOfJob: Codable, Sendable, Equatable {
    public var deadWorkers: [DeadWorkerRecord]?

    public init(deadWorkers: [DeadWorkerRecord]?) {
        self.deadWorkers = deadWorkers
    }
}

extension JSONValue {
    /// The typed result of a job of `kind`, or nil when the kind is unknown or the object is not
    /// that kind's result (a record from a damaged history file).
    public func decodeResult(ofKind kind: String) -> (any JobResult)? {
        guard let type = JobResults.type(ofKind: kind) else { return nil }
        // Straight from the tree (the daemon does this as every job ends); through JSON text,
        // which takes more, where the tree decoder declines.
        return (try? JSONValueDecoder.decode(type, from: self)) ?? (try? decode(type))
    }
}
