import NIOCore
import PoolHistory
import PoolProtocol

/// The job history's ties to the rest of the controller: trouble with the store shows in the
/// status, and a store made again gets every job this daemon holds.
extension PoolController {
    /// Takes over what the history held at start-up. Runs on the loop, before it serves.
    func adoptHistory(_ store: JobHistory, recovered: RecoveredHistory) {
        history.adopt(store, recovered: recovered)
        // Trouble with the history is shown in Status and STATUS=; a history made again (its
        // directory was removed) gets every record this daemon holds.
        let loop = eventLoop
        let controller = NIOLoopBound(self, eventLoop: loop)
        store.start(healthChanged: { loop.execute { controller.value.noteChange() } },
                    everyRecordNeeded: { loop.execute { controller.value.rewriteHistory() } })
    }

    /// The history was made again: every job this daemon holds is saved to it.
    private func rewriteHistory() {
        let saved = history.saveEveryJob(current: scheduler.jobs)
        logger.info("job history: every job held in memory is saved again", metadata: ["jobs": "\(saved)"])
    }

    /// A job from an earlier run of the daemon (final: it cannot change any more).
    func pastJobRecord(_ id: Int) -> JobRecord? {
        scheduler.jobs[id] == nil ? history.pastRecord(id) : nil
    }
}
