import NIOCore
import PoolHistory
import PoolProtocol

/// The job history: every job is recorded as it is queued, starts and finishes; the jobs earlier
/// runs of the daemon recorded are listed with this run's; both are bounded by `historyLimit`.
extension PoolController {
    /// Takes over what the history held at start-up. Runs on the loop, before it serves.
    func adoptHistory(_ history: JobHistory, recovered: RecoveredHistory) {
        self.history = history
        for record in recovered.records.sorted(by: { $0.id < $1.id }) {
            pastJobs[record.id] = record
            historyOrder.append(record.id)
        }
        nextJobID = max(nextJobID, recovered.highestID + 1)
        // Trouble with the history is shown in Status and STATUS=; a history made again (its
        // directory was removed) gets every record this daemon holds.
        let loop = eventLoop
        let controller = NIOLoopBound(self, eventLoop: loop)
        history.start(healthChanged: { loop.execute { controller.value.noteChange() } },
                      everyRecordNeeded: { loop.execute { controller.value.rewriteHistory() } })
    }

    /// Takes the next job id: recorded as handed out before anyone sees it, so that it is never
    /// handed out again, even after a crash; a refusal when it cannot be.
    func takeJobID() throws(PoolError) -> Int {
        guard JobID.valid.contains(nextJobID) else {
            throw PoolError.resourceLimit("job ids are used up: the history's highest id is \(nextJobID - 1), the largest poold hands out \(JobID.maximum); move \(history?.path ?? "the job history") aside to start a new history")
        }
        do {
            try history?.reserve(id: nextJobID)
        } catch {
            throw PoolError.resourceLimit("the job id cannot be recorded, so no job is started: \(error)")
        }
        return nextJobID
    }

    /// Saves the job's current record (written off the loop, coalesced with other changes).
    func recordHistory(_ job: Job) {
        history?.save(job.record)
    }

    /// The history was made again: every job this daemon holds is saved to it.
    func rewriteHistory() {
        guard let history else { return }
        for id in historyOrder {
            if let job = jobs[id] { history.save(job.record) } else if let past = pastJobs[id] { history.save(past) }
        }
        logger.info("job history: every job held in memory is saved again", metadata: ["jobs": "\(historyOrder.count)"])
    }

    /// Runs `body` on the loop once every record saved so far has been written, with nil or why
    /// they could not be; at once when there is no history.
    func whenHistoryWritten(_ body: @escaping (String?) -> Void) {
        guard let history else { return body(nil) }
        let onLoop = NIOLoopBound(body, eventLoop: eventLoop)
        let loop = eventLoop
        history.whenWritten { failure in loop.execute { onLoop.value(failure) } }
    }

    /// Forgets finished jobs, this run's and earlier runs', that are not among the newest
    /// `historyLimit` by id; queued and running jobs always stay. The history file is pruned by the
    /// same rule, so a restart lists what was listed before it.
    /// Runs as every job finishes: it looks only at the ids beyond the limit, oldest first (live
    /// ones among them are put back, in order).
    func pruneHistory() {
        let surplus = historyOrder.count - configuration.historyLimit
        guard surplus > 0 else { return }
        var live: [Int] = []
        for _ in 0..<surplus {
            let id = historyOrder.removeFirst()
            if let job = jobs[id], !job.state.isFinished {
                live.append(id)
            } else {
                jobs[id] = nil
                pastJobs[id] = nil
            }
        }
        for id in live.reversed() { historyOrder.prepend(id) }
    }

    /// This run's jobs and earlier runs', newest first, without their logs (a listing is a
    /// summary; GetJob has the log).
    /// The newest `limit` jobs, of `state` and `kind` when given (checked before a record is made).
    func recentJobRecords(limit: Int, state: String? = nil, kind: String? = nil) -> [JobRecord] {
        func matches(_ jobState: JobState, _ jobKind: String) -> Bool {
            (state.map { $0 == jobState.rawValue } ?? true) && (kind.map { $0 == jobKind } ?? true)
        }
        let records = historyOrder.reversed().lazy.compactMap { [self] id -> JobRecord? in
            if let job = jobs[id] { return matches(job.state, job.plan.kind.name) ? job.record(includingLog: false) : nil }
            guard var record = pastJobs[id], matches(record.state, record.kind) else { return nil }
            record.log = nil
            return record
        }
        return Array(records.prefix(limit))
    }

    /// A job from an earlier run of the daemon (final: it cannot change any more).
    func pastJobRecord(_ id: Int) -> JobRecord? {
        jobs[id] == nil ? pastJobs[id] : nil
    }

    /// For "no job N" errors: the range of ids that can be asked for.
    var knownJobIDRange: ClosedRange<Int>? {
        guard let low = historyOrder.first, let high = historyOrder.last else { return nil }
        return low...high
    }

    /// The reason of a NotFound for job `id`: what the history holds instead.
    func noJobReason(_ id: Int) -> String {
        guard let range = knownJobIDRange else { return "no job \(id); the history holds no jobs yet" }
        let held = range.lowerBound == range.upperBound ? "job \(range.lowerBound)" : "jobs \(range.lowerBound)-\(range.upperBound)"
        return "no job \(id); the history holds \(held) (`poolctl jobs` lists them)"
    }
}
