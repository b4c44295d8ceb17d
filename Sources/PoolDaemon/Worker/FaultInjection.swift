#if canImport(Glibc)
import Glibc
#endif

/// Testing only: deterministic deaths at the worst moments, so that the recovery paths are tested
/// on purpose rather than by luck. Given to `poold --fault KIND=N` (hidden from help) and
/// passed on to the workers; every fault fires in a job's first worker only (attempt 0), never in
/// its replacement, so recovery can be watched to completion. Never set in production.
public struct FaultInjection: Sendable, Equatable {
    /// Workers in this slot kill themselves as they start: a crash loop.
    public var crashAtStartSlot: Int?
    /// Counter job, locked mode, participant 0: die holding the mutex after this many updates,
    /// right after `dieHoldingLockAt` in the critical section (by default the counter's store,
    /// with the worker's count not yet updated: the case the intent record settles).
    public var dieHoldingLockAfter: Int?
    public var dieHoldingLockAt: LockStep = .counter
    /// Prodcons, the first consumer: die after taking this many messages off the queue, the last
    /// one received into the ledger but not committed (it must be redelivered).
    public var dieConsumingAfter: Int?
    /// Prodcons, the first producer: die after this many messages, the last one sent but not
    /// recorded (its replacement cannot know whether it reached the queue).
    public var dieProducingAfter: Int?
    /// Any job: die right after reporting the end of this many parts of jobs (counted per worker
    /// process), with the report on the event queue but the doorbell not rung yet. The daemon must
    /// still take the report before it handles the death.
    public var dieAfterReport: Int?

    public init() {}

    /// The stores of the locked counter's critical section, in order: the worker dies right after
    /// the named one (`locked`: after taking the mutex, before any store).
    public enum LockStep: String, Sendable, CaseIterable {
        case locked
        case intentBefore = "intent-before"
        case intentDone = "intent-done"
        case intentMarked = "intent-marked"
        case counter
        case count
        case intentCleared = "intent-cleared"
    }

    public static let kinds = ["crash-at-start", "die-holding-lock", "die-consuming", "die-producing", "die-after-report"]

    /// Parses `KIND=N` specifications; the error says what is accepted.
    public init(specifications: [String]) throws(FaultSpecificationError) {
        for specification in specifications {
            let parts = specification.split(separator: "=", maxSplits: 1).map(String.init)
            // die-holding-lock=N@STEP names the store after which to die.
            let valueAndStep = parts.count == 2 ? parts[1].split(separator: "@", maxSplits: 1).map(String.init) : []
            guard let number = valueAndStep.first, let value = Int(number), value >= 0 else { throw FaultSpecificationError(specification: specification) }
            if valueAndStep.count == 2 {
                guard parts[0] == "die-holding-lock", let step = LockStep(rawValue: valueAndStep[1]) else {
                    throw FaultSpecificationError(specification: specification)
                }
                dieHoldingLockAt = step
            }
            switch parts[0] {
            case "crash-at-start": crashAtStartSlot = value
            case "die-holding-lock": dieHoldingLockAfter = value
            case "die-consuming": dieConsumingAfter = value
            case "die-producing": dieProducingAfter = value
            case "die-after-report": dieAfterReport = value
            default: throw FaultSpecificationError(specification: specification)
            }
        }
    }

    /// The worker's command-line arguments that carry the job faults.
    public var workerArguments: [String] {
        var arguments: [String] = []
        if let dieHoldingLockAfter { arguments += ["--fault", "die-holding-lock=\(dieHoldingLockAfter)@\(dieHoldingLockAt.rawValue)"] }
        if let dieConsumingAfter { arguments += ["--fault", "die-consuming=\(dieConsumingAfter)"] }
        if let dieProducingAfter { arguments += ["--fault", "die-producing=\(dieProducingAfter)"] }
        if let dieAfterReport { arguments += ["--fault", "die-after-report=\(dieAfterReport)"] }
        return arguments
    }

    /// Dies as SIGKILL would kill it: no cleanup, no report.
    static func die() -> Never {
        kill(getpid(), SIGKILL)
        fatalError("still alive after SIGKILL")
    }
}

public struct FaultSpecificationError: Error, CustomStringConvertible {
    let specification: String
    public var description: String {
        let steps = FaultInjection.LockStep.allCases.map(\.rawValue).joined(separator: "|")
        return "unknown fault '\(specification)'; testing only: \(FaultInjection.kinds.map { "\($0)=N" }.joined(separator: ", ")), die-holding-lock=N@\(steps)"
    }
}
