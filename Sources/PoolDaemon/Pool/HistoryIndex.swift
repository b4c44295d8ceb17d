import NIOCore
import PoolHistory
import PoolProtocol

/// The job history as the daemon holds it: the store on disk (nil: none kept), the jobs of earlier
/// runs, the order of every job (this run's and earlier runs') for listing and pruning, and the job
/// ids handed out. This run's jobs themselves belong to the scheduler and are passed in where a
/// listing needs them. Lives on the event loop.
final class HistoryIndex {
    private(set) var store: JobHistory?
    private let eventLoop: any EventLoop
    /// Jobs of earlier runs, by id: final records.
    private var pastJobs: [Int: JobRecord] = [:]
    /// The ids of this run's jobs and of `pastJobs` together, oldest first (ids only grow).
    private var order = CircularBuffer<Int>()
    private(set) var nextJobID = 1

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Takes over what the store held at start-up.
    func adopt(_ store: JobHistory, recovered: RecoveredHistory) {
        self.store = store
        for record in recovered.records.sorted(by: { $0.id < $1.id }) {
            pastJobs[record.id] = record
            order.append(record.id)
        }
        nextJobID = max(nextJobID, recovered.highestID + 1)
    }

    /// Takes the next job id: recorded as handed out before anyone sees it, so that it is never
    /// handed out again, even after a crash; a refusal when it cannot be.
    func takeJobID() throws(PoolError) -> Int {
        guard JobID.valid.contains(nextJobID) else {
            throw PoolError.resourceLimit("job ids are used up: the history's highest id is \(nextJobID - 1), the largest poold hands out \(JobID.maximum); move \(store?.path ?? "the job history") aside to start a new history")
        }
        do {
            try store?.reserve(id: nextJobID)
        } catch {
            throw PoolError.resourceLimit("the job id cannot be recorded, so no job is started: \(error)")
        }
        return nextJobID
    }

    /// A job with the id `takeJobID` gave was queued: it is listed from now on. Its record is the
    /// caller's to save, once it knows whether the job started at once (whose start saves it).
    func add(_ job: Job) {
        precondition(job.id == nextJobID, "jobs are enqueued in id order")
        nextJobID += 1
        order.append(job.id)
    }

    /// Saves the job's current record (written off the loop, coalesced with other changes).
    func save(_ job: Job) {
        store?.save(job.record)
    }

    /// Saves a record the caller made already for this change.
    func save(_ record: JobRecord) {
        store?.save(record)
    }

    /// The store was made again: every job held here is saved to it.
    func saveEveryJob(current jobs: [Int: Job]) -> Int {
        guard let store else { return 0 }
        for id in order {
            if let job = jobs[id] { store.save(job.record) } else if let past = pastJobs[id] { store.save(past) }
        }
        return order.count
    }

    /// Runs `body` on the loop once every record saved so far has been written, with nil or why
    /// they could not be; at once when there is no store.
    func whenWritten(_ body: @escaping (String?) -> Void) {
        guard let store else { return body(nil) }
        let onLoop = NIOLoopBound(body, eventLoop: eventLoop)
        let loop = eventLoop
        store.whenWritten { failure in loop.execute { onLoop.value(failure) } }
    }

    /// Forgets finished jobs, this run's and earlier runs', that are not among the newest `limit`
    /// by id; queued and running jobs always stay. The store is pruned by the same rule, so a
    /// restart lists what was listed before it. Runs as every job finishes: it looks only at the
    /// ids beyond the limit, oldest first (live ones among them are put back, in order). Returns
    /// this run's jobs to forget.
    func prune(limit: Int, current jobs: [Int: Job]) -> [Int] {
        let surplus = order.count - limit
        guard surplus > 0 else { return [] }
        var live: [Int] = []
        var forgotten: [Int] = []
        for _ in 0..<surplus {
            let id = order.removeFirst()
            if let job = jobs[id] {
                if job.state.isFinished { forgotten.append(id) } else { live.append(id) }
            } else {
                pastJobs[id] = nil
            }
        }
        for id in live.reversed() { order.prepend(id) }
        return forgotten
    }

    /// This run's jobs and earlier runs', newest first, without their logs (a listing is a
    /// summary; GetJob has the log): the newest `limit` of `state` and `kind` when given (checked
    /// before a record is made).
    func recentRecords(limit: Int, state: String? = nil, kind: String? = nil, current jobs: [Int: Job]) -> [JobRecord] {
        func matches(_ jobState: JobState, _ jobKind: String) -> Bool {
            (state.map { $0 == jobState.rawValue } ?? true) && (kind.map { $0 == jobKind } ?? true)
        }
        let records = order.reversed().lazy.compactMap { [pastJobs] id -> JobRecord? in
            if let job = jobs[id] { return matches(job.state, job.plan.kind.name) ? job.record(includingLog: false) : nil }
            guard var record = pastJobs[id], matches(record.state, record.kind) else { return nil }
            record.log = nil
            return record
        }
        return Array(records.prefix(limit))
    }

    /// A job from an earlier run of the daemon (final: it cannot change any more).
    func pastRecord(_ id: Int) -> JobRecord? {
        pastJobs[id]
    }

    /// The reason of a NotFound for job `id`: what the history holds instead.
    func noJobReason(_ id: Int) -> String {
        guard let low = order.first, let high = order.last else { return "no job \(id); the history holds no jobs yet" }
        let held = low == high ? "job \(low)" : "jobs \(low)-\(high)"
        return "no job \(id); the history holds \(held) (`poolctl jobs` lists them)"
    }
}
