import Foundation
import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Jobs: a FIFO queue, dispatch onto disjoint idle workers, completion, cancellation, history.
extension PoolController {
    /// Queues a job made with the next id (`Job(id: nextJobID, ...)`), possibly watched already.
    func enqueue(_ job: Job) {
        precondition(job.id == nextJobID, "jobs are enqueued in id order")
        nextJobID += 1
        jobs[job.id] = job
        historyOrder.append(job.id)
        queue.append(job.id)
        recordHistory(job)
        logger.info("job queued", metadata: ["job": "\(job.id)", "kind": "\(job.plan.kind.name)", "workers": "\(job.plan.workers)"])
        dispatch()
        noteChange()
    }

    /// Starts queued jobs, oldest first, while enough workers are idle. The head waits for workers
    /// rather than being overtaken: FIFO keeps a large job from starving behind small ones.
    func dispatch() {
        guard lifecycle == .running else { return }
        while let head = queue.first, let job = jobs[head] {
            let idle = slots.values.filter { $0.state == .ready && !$0.retiring }.map(\.index).sorted()
            guard idle.count >= job.plan.workers else { return }
            queue.removeFirst()
            start(job, on: Array(idle.prefix(job.plan.workers)))
        }
    }

    private func start(_ job: Job, on assigned: [Int]) {
        let segment: JobSegment
        do {
            segment = try job.plan.createSegment(name: configuration.names.job(job.id))
        } catch {
            job.failure = "cannot create the job's shared memory: \(error)"
            finish(job)
            return
        }
        job.segment = segment
        job.slots = assigned
        job.state = .running
        runningJobIDs.insert(job.id)
        job.startedAt = Date()
        for (participant, index) in assigned.enumerated() {
            slots[index]?.state = .busy
            slots[index]?.job = job.id
            let command = WorkerCommand(kind: .runJob, jobID: job.id, participant: participant)
            do {
                guard let commands = slots[index]?.commands else { throw IPCError("no command queue", errno: EBADF) }
                try commands.send(command)
            } catch {
                // The worker cannot be reached; the job cannot complete. Stop the others.
                slots[index]?.state = .ready
                slots[index]?.job = nil
                job.ended.insert(participant)
                job.failure = job.failure ?? "cannot send the job to slot \(index): \(error)"
                segment.cancel()
            }
        }
        logger.info("job started", metadata: ["job": "\(job.id)", "kind": "\(job.plan.kind.name)", "slots": "\(assigned)",
                                              MessageID.key: MessageID.jobStarted])
        recordHistory(job)
        if let monitor = job.plan.makeMonitor(segment: segment) {
            job.monitor = monitor
            scheduleMonitor(for: job, monitor: monitor, after: monitor.initialDelay)
        }
        if let timeout = job.timeout {
            job.timeoutTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(timeout)) { [self] in
                timedOut(job, after: timeout)
            }
        }
        job.notifyWatchers()
        if job.ended.count == assigned.count { finish(job) }
        noteChange()
    }

    /// A worker reports that its part of a job ended.
    func participantEnded(slot index: Int, pid: Int32, jobID: Int, outcome: WorkerEvent.Outcome, errorCode: Int32) {
        guard var slot = slots[index], slot.process?.pid == pid, slot.job == jobID else { return }
        slot.job = nil
        if slot.state == .busy { slot.state = .ready }
        slots[index] = slot
        if let job = jobs[jobID], let participant = job.slots.firstIndex(of: index) {
            job.ended.insert(participant)
            if outcome == .failed {
                let reason = errorCode != 0 ? String(cString: strerror(errorCode)) : "an error"
                job.failure = job.failure ?? "the worker in slot \(index) failed: \(reason)"
                job.segment?.cancel()
            }
            if job.ended.count == job.slots.count { finish(job) }
        }
        if slot.retiring || lifecycle == .draining { stopWorker(slot: index) }
        noteChange()
        dispatch()
    }

    /// Stops a job. A queued one is simply dropped; a running one has its cancel flag set and its
    /// workers are given `cancelGrace` to notice before they are killed.
    func cancel(_ job: Job, reason: String) {
        switch job.state {
        case .queued:
            queue.removeAll { $0 == job.id }
            job.cancelReason = reason
            finish(job)
        case .running:
            guard job.cancelReason == nil else { return }
            job.cancelReason = reason
            job.segment?.cancel()
            // Participants waiting for a replacement worker have nothing left to stop.
            for index in slots.keys.sorted() where slots[index]?.takeover?.job == job.id {
                let participant = slots[index]!.takeover!.participant
                slots[index]?.takeover = nil
                job.ended.insert(participant)
                if lifecycle == .draining { stopBackedOffSlot(index) }
            }
            if job.ended.count == job.slots.count {
                finish(job)
                return
            }
            job.cancelTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(configuration.cancelGrace)) { [self] in
                for (participant, index) in job.slots.enumerated() where !job.ended.contains(participant) {
                    logger.warning("worker ignored the cancellation; killing it", metadata: ["job": "\(job.id)", "slot": "\(index)"])
                    slots[index]?.process?.signal(SIGKILL)
                }
            }
            logger.info("cancelling job", metadata: ["job": "\(job.id)", "reason": "\(reason)"])
        case .succeeded, .failed, .cancelled, .interrupted:
            return
        }
        noteChange()
    }

    /// Every participant has ended (or the job never started): settle the state, read the result,
    /// remove the segment, tell the watchers, keep the record in the bounded history.
    func finish(_ job: Job) {
        job.cancelTimer?.cancel()
        job.timeoutTimer?.cancel()
        job.progressTimer?.cancel()
        job.monitorTimer?.cancel()
        var fullLog: [String] = []
        if let segment = job.segment {
            job.result = job.plan.result(from: segment, monitor: job.monitor).adding(deadWorkers: job.deadWorkers)
            fullLog = job.plan.logLines(segment: segment, from: 0)
            job.finalLog = KeptJobLog.bounded(fullLog, jobID: job.id)
            job.plan.removeResources(segmentName: segment.segment.name)
            SharedSegment.unlink(name: segment.segment.name)
            job.segment = nil
        }
        if job.failure != nil {
            job.state = .failed
        } else if job.cancelReason != nil {
            job.state = .cancelled
        } else {
            job.state = .succeeded
        }
        job.finishedAt = Date()
        runningJobIDs.remove(job.id)
        jobsFinished += 1
        recordHistory(job)
        pruneHistory()
        let seconds = job.startedAt.map { String(format: "%.3f", job.finishedAt!.timeIntervalSince($0)) } ?? "0"
        var metadata: Logger.Metadata = ["job": "\(job.id)", "kind": "\(job.plan.kind.name)", "state": "\(job.state.rawValue)", "seconds": "\(seconds)"]
        if let failure = job.failure { metadata["error"] = "\(failure)" }
        if job.state == .failed {
            metadata[MessageID.key] = MessageID.jobFailed
            logger.error("job failed", metadata: metadata)
        } else {
            metadata[MessageID.key] = MessageID.jobFinished
            logger.info("job \(job.state.rawValue)", metadata: metadata)
        }
        job.notifyWatchers(fullLog: fullLog)
        noteChange()
    }

    /// Fails queued jobs that ask for more workers than the pool can now offer, rather than leaving
    /// them queued forever.
    func failQueuedJobsThatCannotRun() {
        let usable = usableSlotCount
        for id in queue {
            guard let job = jobs[id], job.plan.workers > usable else { continue }
            queue.removeAll { $0 == id }
            let failed = slots.values.filter { $0.state == .failed }.count
            job.failure = "the job needs \(job.plan.workers) workers but only \(usable) can run (pool size \(targetSize), \(failed) slots failed)"
            finish(job)
        }
    }

    /// Streams progress to a job's watchers while it is queued or runs (one timer per job).
    func scheduleProgress(for job: Job) {
        guard job.progressTimer == nil else { return }
        job.progressTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(configuration.progressInterval)) { [self] in
            job.progressTimer = nil
            guard !job.state.isFinished, !job.watchers.isEmpty else { return }
            if job.state == .running { job.notifyWatchers() }
            scheduleProgress(for: job)
        }
    }

    /// While jobs run and clients follow the status, pushes it to them every `progressInterval`:
    /// the jobs' progress changes without a change the status would otherwise be pushed for.
    func scheduleStatusProgress() {
        guard statusProgressTimer == nil, !statusFollowers.isEmpty, !runningJobIDs.isEmpty else { return }
        statusProgressTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(configuration.progressInterval)) { [self] in
            statusProgressTimer = nil
            guard !statusFollowers.isEmpty, !runningJobIDs.isEmpty else { return }
            let status = statusReply()
            for follower in statusFollowers.values { follower(status) }
            scheduleStatusProgress()
        }
    }

    private func scheduleMonitor(for job: Job, monitor: any JobMonitor, after delay: Duration) {
        job.monitorTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(delay)) { [self] in
            guard job.state == .running, job.cancelReason == nil, job.failure == nil else { return }
            if let next = monitor.tick() { scheduleMonitor(for: job, monitor: monitor, after: next) }
        }
    }
}
