import Foundation
import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The jobs: the FIFO queue, dispatch onto disjoint idle workers (with backfill and a bound on
/// overtaking), a participant's end, cancellation, a job's finish and its record. Reads the slot
/// table (idle workers, what they are doing) and sends workers their part; what a slot's death
/// or the daemon's stop means for a job is decided by the controller, which calls in here. Every
/// record goes to the history index; every change is published. Lives on the event loop.
final class JobScheduler {
    struct Policy {
        var overtakeLimit: Int
        var cancelGrace: Duration
        var progressInterval: Duration
        var historyLimit: Int
        var names: IPCNames
        /// `job-log-rate` at the start (JobLogLimiter).
        var jobLogRate: Int
    }

    /// This run's jobs, queued, running and finished (the newest `historyLimit`), by id.
    private(set) var jobs: [Int: Job] = [:]
    private(set) var queue: [Int] = []
    /// Kept as jobs start and finish: counting them in `jobs`, which holds the finished ones of the
    /// history too, would cost a pass over up to `historyLimit` jobs per change.
    private(set) var running: Set<Int> = []
    private(set) var finishedCount = 0
    /// The job segments kept for reuse.
    let segments: JobSegmentPool
    /// Which jobs have their lines logged (`job-log-rate`, changed by a reload).
    var logLimiter: JobLogLimiter
    private var logSummaryTimer: Scheduled<Void>?
    private let policy: Policy
    private let slotTable: SlotTable
    private let history: HistoryIndex
    private let publisher: StatusPublisher
    private let eventLoop: any EventLoop
    private let logger: Logger

    init(policy: Policy, slotTable: SlotTable, history: HistoryIndex, publisher: StatusPublisher, eventLoop: any EventLoop, logger: Logger) {
        self.policy = policy
        self.segments = JobSegmentPool(names: policy.names)
        self.logLimiter = JobLogLimiter(jobsPerSecond: policy.jobLogRate)
        self.slotTable = slotTable
        self.history = history
        self.publisher = publisher
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// Queues a job made with the next id (`history.takeJobID()`), possibly watched already.
    func enqueue(_ job: Job) {
        jobs[job.id] = job
        history.add(job)
        queue.append(job.id)
        // At debug: a trivial job's round trip is a few hundred microseconds, and the start and
        // the end are logged at info already.
        logger.debug("job \(job.id) (\(job.plan.kind.name)) queued: needs \(Self.workers(job.plan.workers))",
                     metadata: ["job": "\(job.id)", "kind": "\(job.plan.kind.name)", "workers": "\(job.plan.workers)"])
    }

    /// Starts queued jobs on idle workers, oldest first, with backfill and a fairness rule. A job
    /// that cannot start yet (too few idle workers) does not hold back a smaller one behind it that
    /// can; but each job may be overtaken so only `overtakeLimit` times. After that, no job behind
    /// it starts before it does, so the workers that free up gather for it and a large job cannot
    /// starve behind a stream of small ones. Every job left waiting is told why (`waiting`).
    /// `start` starts a job on the slots chosen for it (`start(_:on:)`, plus what the controller
    /// adds).
    func dispatch(start: (Job, [Int]) -> Void) {
        var idle = slotTable.idle
        var passed: [Job] = []
        var firstClaim: Job?
        for id in queue {
            // Starting a job can reply to a client, whose next call may dispatch in turn: what
            // that started is no longer queued or idle here.
            // A job whose record is not written yet is not started (and not overtaken).
            guard let job = jobs[id], job.state == .queued, !job.awaitingRecord else { continue }
            idle.removeAll { slotTable[$0]?.state != .ready }
            if firstClaim == nil, idle.count >= job.plan.workers {
                queue.removeAll { $0 == id }
                let assigned = Array(idle.prefix(job.plan.workers))
                idle.removeFirst(job.plan.workers)
                for earlier in passed { earlier.overtaken += 1 }
                start(job, assigned)
                continue
            }
            if firstClaim == nil, job.overtaken >= policy.overtakeLimit { firstClaim = job }
            passed.append(job)
        }
        describeWaits(passed, firstClaim: firstClaim)
    }

    /// Tells each queued job's watchers what it waits for, when that changed.
    private func describeWaits(_ waiting: [Job], firstClaim: Job?) {
        guard !waiting.isEmpty else { return }
        let pool = slotTable.occupancy
        var behindFirstClaim = false
        for job in waiting where job.state == .queued {
            var text: String
            if behindFirstClaim, let firstClaim {
                text = "waiting behind job \(firstClaim.id), which was overtaken \(firstClaim.overtaken) times and gets the next free workers"
            } else {
                let workers = job.plan.workers
                text = "waiting for \(workers) idle worker\(workers == 1 ? "" : "s"); \(pool)"
                if job === firstClaim {
                    text += "; overtaken \(job.overtaken) times, it now gets the next free workers"
                    behindFirstClaim = true
                }
            }
            guard job.waiting != text else { continue }
            job.waiting = text
            job.notifyWatchers()
        }
    }

    /// Starts a job on the slots given (idle, in participant order): makes its segment, hands
    /// each worker its part, records and announces the start. A job whose segment cannot be made,
    /// or none of whose workers can be reached, is finished (failed) at once.
    func start(_ job: Job, on assigned: [Int]) {
        let segment: JobSegment
        do {
            segment = try makeSegment(for: job)
        } catch {
            job.failure = "cannot create the job's \(error.operation.hasPrefix("mq_") ? "message queue" : "shared memory"): \(error)"
            finish(job)
            return
        }
        job.segment = segment
        job.slots = assigned
        job.state = .running
        running.insert(job.id)
        job.startedAt = Date()
        let logged = logLimiter.admit()
        job.linesLogged = logged
        for (participant, index) in assigned.enumerated() {
            slotTable.update(index) { slot in
                slot.state = .busy
                slot.job = job.id
            }
            do {
                try slotTable.send(WorkerCommand(kind: .runJob, jobID: job.id, segmentID: segment.id, participant: participant, quiet: !logged), to: index)
            } catch {
                // The worker cannot be reached; the job cannot complete. Stop the others.
                slotTable.update(index) { slot in
                    slot.state = .ready
                    slot.job = nil
                }
                endParticipant(participant, of: job, failure: "cannot send the job to slot \(index): \(error)", finishing: false)
            }
        }
        if logged {
            let on = assigned.count == 1 ? "slot \(assigned[0])" : "slots " + assigned.map(String.init).joined(separator: ", ")
            logger.info("job \(job.id) (\(job.plan.kind.name)) started on \(on)",
                        metadata: ["job": .string(String(job.id)), "kind": .string(job.plan.kind.name), "slots": .string(Self.list(assigned)),
                                   MessageID.key: MessageID.jobStarted])
        }
        if let monitor = job.plan.makeMonitor(segment: segment) {
            job.monitor = monitor
            scheduleMonitor(for: job, monitor: monitor, after: monitor.initialDelay)
        }
    }

    /// The job's segment, filled: a free one of its size reused (no system call, no descriptor),
    /// else a new one, made with the descriptor reserve's help (as is a prodcons job's queue).
    private func makeSegment(for job: Job) throws(IPCError) -> JobSegment {
        let plan = job.plan, shape = plan.segmentShape
        func make() throws(IPCError) -> JobSegment {
            let segment: JobSegment
            if let reused = segments.reuse(for: shape) {
                segment = reused
            } else {
                segment = try segments.create(for: shape, jobID: job.id)
            }
            do {
                try plan.fill(segment)
            } catch {
                segments.discard(segment.segment)
                throw error
            }
            return segment
        }
        guard plan.messageQueue != nil || !segments.hasFree(for: shape) else { return try make() }
        return try slotTable.descriptorReserve.whileReleased { () throws(IPCError) in try make() }
    }

    /// Whether a finished job's segment may be reused: only when no process can write into it
    /// any more, that is when every participant's end was its worker's own report. A worker that
    /// died, was killed (hung, timed out, held by a tracer, not stopping when cancelled) or could
    /// not be sent its part leaves a death or a failure on the job; so does one that reported a
    /// failure, whose segment is discarded too, to be safe.
    private static func segmentIsReusable(after job: Job) -> Bool {
        job.deadWorkers.isEmpty && job.failure == nil
    }

    /// After `start` and what the controller adds to it: the history and the watchers hear of the
    /// start (one record for both), and a job none of whose parts could be handed out is finished.
    func announceStart(of job: Job) {
        guard job.state == .running else { return }
        let record = job.record
        history.save(record)
        job.notifyWatchers(record)
        if job.ended.count == job.slots.count { finish(job) }
        publisher.noteChange()
    }

    /// A participant's part has ended: finished (`failure` nil), failed, or its worker died or
    /// could not be reached. A failure fails the job, first reason kept, and tells the others to
    /// stop; the job finishes once every part has ended (unless `finishing` is false: the caller
    /// settles it).
    func endParticipant(_ participant: Int, of job: Job, failure: String?, finishing: Bool = true) {
        job.ended.insert(participant)
        if let failure {
            job.failure = job.failure ?? failure
            job.segment?.cancel()
        }
        if finishing, job.ended.count == job.slots.count { finish(job) }
    }

    /// Stops a job. A queued one is simply dropped; a running one has its cancel flag set and its
    /// workers are given `cancelGrace` to notice before they are killed. Participants waiting for a
    /// replacement worker have nothing left to stop: their takeovers are dropped, and their slots
    /// returned.
    @discardableResult
    func cancel(_ job: Job, reason: String) -> [Int] {
        var released: [Int] = []
        switch job.state {
        case .queued:
            queue.removeAll { $0 == job.id }
            job.cancelReason = reason
            finish(job)
        case .running:
            guard job.cancelReason == nil else { return [] }
            job.cancelReason = reason
            job.segment?.cancel()
            for (index, takeover) in slotTable.takeovers(of: job.id) {
                slotTable.update(index) { $0.takeover = nil }
                endParticipant(takeover.participant, of: job, failure: nil, finishing: false)
                released.append(index)
            }
            if job.ended.count == job.slots.count {
                finish(job)
                return released
            }
            let grace = policy.cancelGrace
            job.cancelTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(grace)) { [self] in
                for (participant, index) in job.slots.enumerated() where !job.ended.contains(participant) {
                    logger.warning("the worker in slot \(index) did not stop job \(job.id) within \(DurationText.format(nanoseconds(grace))) of its cancellation; killing it",
                                   metadata: ["job": "\(job.id)", "slot": "\(index)"])
                    slotTable.kill(index)
                }
            }
            logger.info("cancelling job \(job.id) (\(job.plan.kind.name)): \(reason)", metadata: ["job": "\(job.id)", "reason": "\(reason)"])
        case .succeeded, .failed, .cancelled, .interrupted:
            return []
        }
        publisher.noteChange()
        return released
    }

    /// Every participant has ended (or the job never started): settle the state, read the result,
    /// give the segment back (for reuse, or to be removed), tell the watchers, keep the record in
    /// the bounded history.
    func finish(_ job: Job) {
        job.cancelTimer?.cancel()
        job.timeoutTimer?.cancel()
        job.progressTimer?.cancel()
        job.monitorTimer?.cancel()
        var fullLog: [String] = []
        let segment = job.segment
        if let segment {
            let result = job.plan.result(from: segment, monitor: job.monitor)
            job.result = result.value.adding(deadWorkers: job.deadWorkers)
            job.resultSummary = result.summary
            fullLog = job.plan.logLines(segment: segment, from: 0)
            job.finalLog = KeptJobLog.bounded(fullLog, jobID: job.id)
            job.plan.removeResources(segmentName: segment.segment.name)
            job.segment = nil
        }
        // A finished job holds nothing: the record kept in the history is plain values. (The
        // monitor may hold the queue open or the segment mapped.)
        job.monitor?.close()
        job.monitor = nil
        if let segment { segments.giveBack(segment, reusable: Self.segmentIsReusable(after: job)) }
        if job.failure != nil {
            job.state = .failed
        } else if job.cancelReason != nil {
            job.state = .cancelled
        } else {
            job.state = .succeeded
        }
        job.finishedAt = Date()
        running.remove(job.id)
        finishedCount += 1
        // The final record, made once: the watchers get it first (their replies are what a caller
        // waits for; on two CPUs the rest overlaps with the caller's wake-up), then the history
        // keeps it and the log line sums it up.
        let record = job.record
        job.notifyWatchers(record, fullLog: fullLog)
        history.save(record)
        for id in history.prune(limit: policy.historyLimit, current: jobs) { jobs[id] = nil }
        defer { publisher.noteChange() }
        // A job that never started is counted as it ends.
        guard job.state == .failed || (job.linesLogged ?? logLimiter.admit()) else {
            if logLimiter.noteUnlogged(job.state) { scheduleLogSummary() }
            return
        }
        let elapsed = job.startedAt.map { job.finishedAt!.timeIntervalSince($0) }
        var metadata: Logger.Metadata = ["job": .string(String(job.id)), "kind": .string(job.plan.kind.name), "state": .string(job.state.rawValue),
                                         "seconds": .string(Self.fixed(elapsed ?? 0, decimals: 3))]
        if let failure = job.failure { metadata["error"] = .string(failure) }
        // "job 7 (prodcons) succeeded in 1.20s: checksum OK, 1000000 items": what and how, in the text.
        let when = elapsed.map { job.state == .succeeded ? " in \(Self.seconds($0))" : " after \(Self.seconds($0))" } ?? " before it started"
        // What `record.summary` says, without decoding the result back into its type.
        let summary = record.error ?? job.resultSummary ?? record.summary
        let message = "job \(job.id) (\(job.plan.kind.name)) \(job.state.rawValue)\(when)" + (summary.isEmpty ? "" : ": " + summary)
        if job.state == .failed {
            metadata[MessageID.key] = MessageID.jobFailed
            logger.error("\(message)", metadata: metadata)
        } else {
            metadata[MessageID.key] = MessageID.jobFinished
            logger.info("\(message)", metadata: metadata)
        }
    }

    /// Sums up, a second after the first of them, the jobs that finished without their lines logged.
    private func scheduleLogSummary() {
        logSummaryTimer = eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            logSummaryTimer = nil
            logUnloggedSummary()
        }
    }

    /// Logs the summary now (also at the daemon's stop, for what the last second left).
    func logUnloggedSummary() {
        logSummaryTimer?.cancel()
        logSummaryTimer = nil
        guard let summary = logLimiter.takeSummary() else { return }
        logger.info("\(summary.message)", metadata: ["unlogged": .string(String(summary.count)), "jobLogRate": .string(String(logLimiter.jobsPerSecond)),
                                                     MessageID.key: MessageID.jobsUnlogged])
    }

    /// Fails the queued jobs `refusal` refuses (they ask for more workers than the pool can now
    /// offer) with its reason, rather than leaving them queued forever.
    func failQueued(_ refusal: (Job) -> PoolError?) {
        for id in queue {
            guard let job = jobs[id], let refused = refusal(job) else { continue }
            queue.removeAll { $0 == id }
            job.failure = "\(refused.shortName): \(refused.parameters.reason ?? "")"
            finish(job)
        }
    }

    /// Streams progress to a job's watchers while it is queued or runs (one timer per job).
    func scheduleProgress(for job: Job) {
        guard job.progressTimer == nil else { return }
        job.progressTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(policy.progressInterval)) { [self] in
            job.progressTimer = nil
            guard !job.state.isFinished, !job.watchers.isEmpty else { return }
            if job.state == .running { job.notifyWatchers() }
            scheduleProgress(for: job)
        }
    }

    private func scheduleMonitor(for job: Job, monitor: any JobMonitor, after delay: Duration) {
        job.monitorTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(delay)) { [self] in
            guard job.state == .running, job.cancelReason == nil, job.failure == nil else { return }
            if let next = monitor.tick() { scheduleMonitor(for: job, monitor: monitor, after: next) }
        }
    }

    /// `[0, 1]`, as an array of Int describes itself, without the reflection `description` goes through.
    static func list(_ values: [Int]) -> String {
        "[" + values.map(String.init).joined(separator: ", ") + "]"
    }

    /// `2 workers`, `1 worker`.
    static func workers(_ count: Int) -> String { count == 1 ? "1 worker" : "\(count) workers" }

    /// `1.20s`, `350ms`: a duration in a message.
    static func seconds(_ value: Double) -> String {
        value >= 1 ? fixed(value, decimals: 2) + "s" : fixed(value * 1000, decimals: 0) + "ms"
    }

    /// `value` rounded to `decimals` places, as `%.Nf` writes it (for a value >= 0), without
    /// `String(format:)`, which costs a Foundation formatter per call on every job's end.
    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value * Double(scale)).rounded(.toNearestOrEven)
        guard value >= 0, scaled < 1e15 else { return "\(value)" }
        let units = Int(scaled)
        let whole = String(units / scale)
        guard decimals > 0 else { return whole }
        let fraction = String(units % scale)
        return whole + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
