import PoolProtocol

/// A job kind, all the daemon knows of it in one place: its name (its result type's, in
/// PoolProtocol) and the number that tags its segments, how a Run's parameters become a plan, the
/// worker's side, and its typed result. Each kind is a folder in Kinds/, listed in `JobCatalog`.
protocol JobKind: JobPlan {
    /// The result as poolctl decodes it. (Not `Result`, which would hide Swift's in every kind.)
    associatedtype TypedResult: JobResult

    /// Tags the kind's segments, so that a worker knows what it is to run; one per kind.
    static var code: UInt32 { get }

    /// A Run's parameters, checked, as a plan (defaults filled in), or the error that names the
    /// parameter and says what would do.
    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> Self

    /// One participant's share of the job, in a worker.
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome

    /// The result, read from the segment after the participants have ended (also when the job
    /// failed or was cancelled: what was done until then).
    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> TypedResult
}

extension JobKind {
    static var name: String { TypedResult.kind }

    var kind: any JobKind.Type { Self.self }

    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> (value: JSONValue, summary: String) {
        let result = typedResult(from: segment, monitor: monitor)
        return (JSONValue(reporting: result), result.summary)
    }
}

/// Every job kind the daemon runs, and how a Run call becomes a plan of one or a precise error. A
/// new kind is a folder in Kinds/ and a line in `kinds`.
enum JobCatalog {
    static let kinds: [any JobKind.Type] = [
        CounterJob.self, ProdConsJob.self, EventJob.self, TasksJob.self, AppendJob.self, LockCellJob.self,
    ]

    static func kind(named name: String) -> (any JobKind.Type)? { kinds.first { $0.name == name } }

    /// The kind whose segments carry `code`.
    static func kind(code: UInt32) -> (any JobKind.Type)? { kinds.first { $0.code == code } }

    /// The kinds' names, for refusals: "counter, prodcons, ...".
    static var names: String { kinds.map { $0.name }.joined(separator: ", ") }

    static func plan(kind name: String, parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> any JobPlan {
        guard let kind = kind(named: name) else {
            throw PoolError.invalidParameter("kind", "unknown job kind '\(name)'; this daemon runs: \(names)")
        }
        return try kind.plan(parameters, limits: limits)
    }
}

extension JSONValue {
    /// The JSON form of one of the daemon's own Codable values (plain numbers, strings and
    /// lists, which always encode), built without a trip through JSON text (`JSONValueEncoder`).
    init(reporting value: some Encodable) {
        self = (try? JSONValueEncoder.encode(value)) ?? .null
    }
}
