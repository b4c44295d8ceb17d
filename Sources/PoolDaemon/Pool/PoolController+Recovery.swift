import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What happens to a job when one of its workers dies or hangs, and when the job overruns its
/// timeout. A kind that can resume (`JobPlan.resumesAfterWorkerDeath`) keeps running: the dead
/// worker's slot is respawned as usual and its next worker takes the participant over, picking up
/// from what the job's segment says was done. Otherwise the job fails with an account of what was
/// done, and the other participants are stopped.
extension PoolController {
    /// A busy worker died (`replaceable` when the slot will be respawned).
    func participantDied(slot index: Int, pid: Int32, jobID: Int, exit: String, replaceable: Bool) {
        guard let job = scheduler.jobs[jobID], let participant = job.slots.firstIndex(of: index) else { return }
        let attempts = job.replacements[participant] ?? 0
        let resumes = replaceable && job.plan.resumesAfterWorkerDeath && job.state == .running
            && job.cancelReason == nil && job.failure == nil && attempts < configuration.failureLimit
        job.deadWorkers.append(Job.DeadWorker(participant: participant, slot: index, pid: pid, exit: exit, replaced: resumes))
        if resumes {
            job.replacements[participant] = attempts + 1
            slotTable.update(index) { $0.takeover = Slot.Takeover(job: jobID, participant: participant, attempt: attempts + 1) }
            logger.warning("job \(jobID) (\(job.plan.kind.name)): the worker in slot \(index) (pid \(pid)) died running participant \(participant); its replacement takes over that part",
                           metadata: ["job": "\(jobID)", "slot": "\(index)", "pid": "\(pid)", "participant": "\(participant)",
                                      "exit": "\(exit)"])
            job.notifyWatchers()
            return
        }
        scheduler.endParticipant(participant, of: job, failure: "the worker in slot \(index) (pid \(pid)) died: \(exit)")
    }

    /// The slot's new worker is ready: hand it the participant its predecessor left.
    func takeOver(slot index: Int) {
        guard let takeover = slotTable[index]?.takeover else { return }
        slotTable.update(index) { $0.takeover = nil }
        guard let job = scheduler.jobs[takeover.job], job.state == .running, let segment = job.segment, job.cancelReason == nil,
              job.failure == nil else {
            if lifecycle.isDraining { stopWorker(slot: index) } else { dispatchJobs() }
            return
        }
        let command = WorkerCommand(kind: .runJob, jobID: job.id, segmentID: segment.id, participant: takeover.participant, attempt: takeover.attempt)
        do {
            try slotTable.send(command, to: index)
        } catch {
            scheduler.endParticipant(takeover.participant, of: job, failure: "cannot hand participant \(takeover.participant) to the new worker in slot \(index): \(error)")
            noteChange()
            return
        }
        let pid = slotTable.update(index) { slot in
            slot.state = .busy
            slot.job = job.id
            return slot.process?.pid ?? 0
        } ?? Int32(0)
        logger.notice("job \(job.id) (\(job.plan.kind.name)): the new worker in slot \(index) (pid \(pid)) took over participant \(takeover.participant) (replacement \(takeover.attempt))",
                      metadata: ["job": "\(job.id)", "slot": "\(index)", "participant": "\(takeover.participant)",
                                 "attempt": "\(takeover.attempt)"])
        job.notifyWatchers()
        noteChange()
    }

    /// The slot will not produce a replacement worker (it failed, or is being stopped): the job
    /// cannot complete, so it fails with what was done.
    func abandonTakeover(slot index: Int, reason: String) {
        guard let takeover = slotTable[index]?.takeover else { return }
        slotTable.update(index) { $0.takeover = nil }
        guard let job = scheduler.jobs[takeover.job], !job.state.isFinished else { return }
        if let last = job.deadWorkers.lastIndex(where: { $0.participant == takeover.participant }) {
            job.deadWorkers[last].replaced = false
        }
        scheduler.endParticipant(takeover.participant, of: job,
                                 failure: "the worker for participant \(takeover.participant) in slot \(index) died and no replacement can start: \(reason)")
        noteChange()
    }

    /// The job ran longer than its `timeout`: it is stopped like a cancelled one, but fails.
    func timedOut(_ job: Job, after timeout: Duration) {
        guard job.state == .running, job.cancelReason == nil else { return }
        job.failure = job.failure ?? "timed out: still running after its timeout of \(DurationText.format(nanoseconds(timeout)))"
        logger.warning("job \(job.id) (\(job.plan.kind.name)) timed out: still running after \(DurationText.format(nanoseconds(timeout))); cancelling it",
                       metadata: ["job": "\(job.id)", "timeout": "\(timeout)"])
        cancel(job, reason: "timed out")
    }
}

extension JSONValue {
    /// The result with the job's worker deaths added (when there were any).
    func adding(deadWorkers: [Job.DeadWorker]) -> JSONValue {
        guard !deadWorkers.isEmpty, case .object(var fields) = self else { return self }
        let records = deadWorkers.map { dead in
            DeadWorkerRecord(participant: dead.participant, slot: dead.slot, pid: Int(dead.pid), exit: dead.exit,
                             replaced: dead.replaced)
        }
        fields["deadWorkers"] = JSONValue(reporting: records)
        return .object(fields)
    }
}
