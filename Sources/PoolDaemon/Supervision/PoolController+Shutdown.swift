import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// An orderly stop: no new jobs, running ones cancelled, workers asked to exit (then killed),
/// every IPC object unlinked, and only then `onStopped`.
extension PoolController {
    func beginShutdown(reason: String) {
        guard lifecycle == .running || lifecycle == .starting else { return }
        lifecycle = .draining
        notifier.notify("STOPPING=1")
        logger.info("shutting down", metadata: ["reason": "\(reason)"])
        for id in queue {
            if let job = jobs[id] { cancel(job, reason: "the daemon is shutting down (\(reason))") }
        }
        for job in jobs.values where job.state == .running {
            cancel(job, reason: "the daemon is shutting down (\(reason))")
        }
        for index in slots.keys.sorted() {
            guard let slot = slots[index] else { continue }
            switch slot.state {
            case .busy: break  // stops when its part of the job has ended
            case .stopping where slot.process != nil: break
            default: stopWorker(slot: index)
            }
        }
        finishShutdownIfIdle()
    }

    /// Completes the shutdown once no worker process is left.
    func finishShutdownIfIdle() {
        guard lifecycle == .draining, !slots.values.contains(where: { $0.process != nil }) else { return }
        lifecycle = .stopped
        removeIPCObjects()
        watcher?.stop()
        logger.info("all workers stopped; IPC objects removed")
        onStopped?()
        onStopped = nil
    }

    /// Unlinks everything this instance created. Jobs' segments are unlinked as they finish; this
    /// sweeps up whatever a failed start left.
    func removeIPCObjects() {
        let names = configuration.names
        for index in 0..<configuration.maxWorkers { MessageQueue.unlink(name: names.commands(slot: index)) }
        for id in jobs.keys { SharedSegment.unlink(name: names.job(id)) }
        events.close()
        MessageQueue.unlink(name: names.events)
        SharedSegment.unlink(name: names.scoreboard)
    }
}
