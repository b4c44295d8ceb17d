import Logging
import PoolIPC
import PoolProtocol

/// A validated job, ready to be dispatched: what it needs from the pool, how to lay out its shared
/// segment, and how to read its result back once every participant has ended.
protocol JobPlan: Sendable {
    var kind: any JobKind.Type { get }
    /// The parameters as they will be reported (defaults filled in).
    var parameters: JSONValue { get }
    /// Workers the job occupies at once.
    var workers: Int { get }
    /// Units of work in all, for progress (operations, items).
    var totalWork: Int { get }

    /// The bytes of the segment's kind area (`segmentShape`), known before it is created so
    /// that a Run that /dev/shm has no room for is refused.
    var kindAreaSize: Int { get }

    /// The message queue the job creates besides its segment, if any, so that a Run the kernel's
    /// queue limits leave no room for is refused.
    var messageQueue: (depth: Int, messageSize: Int)? { get }

    /// Fills the job's segment (zeroed, its header written: see `segmentShape`), and creates any
    /// IPC object the job needs besides it (named after the segment, so that `removeResources`
    /// finds it). On failure the scheduler discards the segment.
    func fill(_ segment: JobSegment) throws(IPCError)

    /// Unlinks what `fill` made besides the segment.
    func removeResources(segmentName: String)

    /// What the daemon itself does while the job runs (set an event, sample a queue), if anything.
    func makeMonitor(segment: JobSegment) -> (any JobMonitor)?

    /// The job's log lines so far (a trace), read from the segment: from line `start` on (the
    /// lines there are, when fewer).
    func logLines(segment: JobSegment, from start: Int) -> [String]

    /// How many log lines the job has written so far.
    func logLineCount(segment: JobSegment) -> Int

    /// The result, read from the segment after the participants have ended (also when the job
    /// failed or was cancelled: what was done until then), and its summary (`JobResult.summary`),
    /// taken from the typed result it was made from rather than decoded back out of the value.
    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> (value: JSONValue, summary: String)

    /// Adds the kind's live figures (queue depth, waiters, the string so far) to a running job's
    /// progress, read from the segment and the monitor.
    func addLiveFigures(to progress: inout JobProgress, segment: JobSegment, monitor: (any JobMonitor)?)

    /// Whether a participant whose worker died can be handed to a replacement worker, which resumes
    /// from what the dead one left in the segment. Kinds that cannot say what a dead worker had
    /// done are not: the job fails with an account instead.
    var resumesAfterWorkerDeath: Bool { get }
}

extension JobPlan {
    var messageQueue: (depth: Int, messageSize: Int)? { nil }
    /// The job's segment: its header and its size.
    var segmentShape: JobSegment.Shape { JobSegment.Shape(kind: kind.code, participants: workers, kindAreaSize: kindAreaSize) }
    func removeResources(segmentName: String) {}
    func makeMonitor(segment: JobSegment) -> (any JobMonitor)? { nil }
    func logLines(segment: JobSegment, from start: Int) -> [String] { [] }
    func logLineCount(segment: JobSegment) -> Int { 0 }
    func addLiveFigures(to progress: inout JobProgress, segment: JobSegment, monitor: (any JobMonitor)?) {}
    var resumesAfterWorkerDeath: Bool { false }
}

/// The daemon's part in a running job, called on the event loop: first after `initialDelay`,
/// then after whatever delay `tick` returns, until it returns nil or the job ends.
protocol JobMonitor: AnyObject {
    var initialDelay: Duration { get }
    func tick() -> Duration?
    /// The job has finished and its result was read: let go of every descriptor and mapping.
    func close()
}

extension JobMonitor {
    func close() {}
}

/// Upper bounds on what one job may ask for, so that no request means an unbounded allocation or a
/// job that runs for days.
struct JobLimits: Sendable {
    var poolSize: Int
    /// The largest the pool may grow (--max-workers, within the kernel's queue limits): what a
    /// PoolTooSmall refusal may advise resizing to.
    var maxPoolSize = 4096
    var maxIterations = 10_000_000_000
    /// A bound on any count of workers a job asks for, before it is checked against the pool (so
    /// that sums of them cannot overflow).
    static let maxWorkerCount = Int(Int32.max)

    /// The refusal of a job that asks for more workers than the pool has, saying what would do.
    func poolTooSmall(requested: Int) -> PoolError {
        PoolError.poolTooSmall(requested: requested, poolSize: poolSize, maxPoolSize: maxPoolSize)
    }
}

/// What a worker's share of a job works with.
struct ParticipantContext {
    let segment: JobSegment
    let participant: Int
    /// 0 for the participant's first worker, n for its n-th replacement.
    let attempt: Int
    let slot: Int
    /// The worker's scoreboard record: its heartbeat goes here.
    let record: Scoreboard.Record
    /// Testing only: where this worker is to die (none in a replacement).
    let faults: FaultInjection
    let logger: Logger
    /// The job's record for this participant.
    var mine: JobSegment.Participant { segment.participant(participant) }
    /// This worker took over from one that died.
    var isReplacement: Bool { attempt > 0 }
    /// Why the part failed, for the daemon to put in the job's `error`.
    let failure = FailureNote()

    /// Logs why the part failed and keeps the reason for the daemon: every `.failed` goes through
    /// here, so that the job says what happened rather than "an error".
    func fail(_ reason: String, errno: Int32 = 0) -> WorkerEvent.Outcome {
        logger.error("\(reason)")
        failure.reason = failure.reason ?? reason
        failure.errno = failure.errno == 0 ? errno : failure.errno
        return .failed
    }
}

/// A participant's failure reason, set once where the failure is found.
final class FailureNote {
    var reason: String?
    var errno: Int32 = 0
}
