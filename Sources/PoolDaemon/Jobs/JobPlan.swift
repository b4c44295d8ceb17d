import PoolIPC
import PoolProtocol

/// A validated job, ready to be dispatched: what it needs from the pool, how to lay out its shared
/// segment, and how to read its result back once every participant has ended.
protocol JobPlan: Sendable {
    var kind: JobKindCode { get }
    /// The parameters as they will be reported (defaults filled in).
    var parameters: JSONValue { get }
    /// Workers the job occupies at once.
    var workers: Int { get }
    /// Units of work in all, for progress (operations, items).
    var totalWork: Int { get }

    /// Creates and fills the job's segment.
    func createSegment(name: String) throws(IPCError) -> JobSegment

    /// The result, read from the segment after the participants have ended (also when the job
    /// failed or was cancelled: what was done until then).
    func result(from segment: JobSegment) -> JSONValue
}

/// The job kinds, with the number that tags their segments and the name clients use.
enum JobKindCode: UInt32, Sendable, CaseIterable {
    case counter = 1

    var name: String {
        switch self {
        case .counter: return "counter"
        }
    }

    init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }
}

/// Turns a Run call into a plan, or a precise error.
enum JobCatalog {
    static func plan(kind: String, parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> any JobPlan {
        guard let code = JobKindCode(name: kind) else {
            let kinds = JobKindCode.allCases.map(\.name).joined(separator: ", ")
            throw PoolError.invalidParameter("kind", "unknown job kind '\(kind)'; this daemon runs: \(kinds)")
        }
        switch code {
        case .counter: return try CounterJob.plan(parameters, limits: limits)
        }
    }
}

/// Upper bounds on what one job may ask for, so that no request means an unbounded allocation or a
/// job that runs for days.
struct JobLimits: Sendable {
    var poolSize: Int
    var maxIterations = 10_000_000_000
}

/// The worker side of a job kind: does one participant's share.
protocol JobParticipantWork {
    static func run(segment: JobSegment, participant: Int, progress: Scoreboard.Record) -> WorkerEvent.Outcome
}
