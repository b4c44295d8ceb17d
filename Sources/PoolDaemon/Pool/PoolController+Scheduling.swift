import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Where jobs meet the rest of the pool: a job is dispatched only while the pool runs, gets its
/// timeout, and a part that ends frees its worker (which may then stop); a cancelled job's
/// released slots stay down while the daemon drains. The jobs themselves are the scheduler's.
extension PoolController {
    /// Queues a job made with the next id (`history.takeJobID()`), possibly watched already.
    func enqueue(_ job: Job) {
        scheduler.enqueue(job)
        dispatchJobs()
        // A job that started (or failed) at once has saved a newer record; the history would
        // overwrite a queued one unwritten, after building it for nothing.
        if job.state == .queued { history.save(job) }
        noteChange()
    }

    /// Starts what the queue can start on the idle workers (see `JobScheduler.dispatch`).
    func dispatchJobs() {
        guard lifecycle.isRunning else { return }
        scheduler.dispatch(start: startJob)
    }

    private func startJob(_ job: Job, on assigned: [Int]) {
        scheduler.start(job, on: assigned)
        if job.state == .running, let timeout = job.timeout {
            job.timeoutTimer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(timeout)) { [self] in
                timedOut(job, after: timeout)
            }
        }
        scheduler.announceStart(of: job)
    }

    /// A worker reports that its part of a job ended.
    func participantEnded(slot index: Int, pid: Int32, jobID: Int, outcome: WorkerEvent.Outcome, errorCode: Int32, reason: String) {
        guard let slot = slotTable.jobEnded(index, pid: pid, job: jobID) else { return }
        if let job = scheduler.jobs[jobID], let participant = job.slots.firstIndex(of: index) {
            var failure: String?
            if outcome == .failed {
                // The reason names the errno already when there was one.
                let reason = !reason.isEmpty ? reason : errorCode != 0 ? String(cString: strerror(errorCode)) : "it gave no reason"
                failure = "participant \(participant) (slot \(index), pid \(pid)) failed: \(reason)"
            }
            scheduler.endParticipant(participant, of: job, failure: failure)
        }
        if slot.retiring || slot.replaceAfterJob || lifecycle.isDraining { stopWorker(slot: index) }
        noteChange()
        dispatchJobs()
    }

    /// Stops a job (see `JobScheduler.cancel`); while the daemon drains, a slot whose takeover
    /// the cancel dropped is not respawned.
    func cancel(_ job: Job, reason: String) {
        for index in scheduler.cancel(job, reason: reason) where lifecycle.isDraining { stopBackedOffSlot(index) }
    }

    /// Fails queued jobs that ask for more workers than the pool can now offer (a slot failed, the
    /// pool shrank), with the reason `Run` would refuse them with.
    func failQueuedJobsThatCannotRun() {
        scheduler.failQueued { slotTable.refusal(forWorkers: $0.plan.workers) }
    }
}
