import Logging
import PoolHistory
import PoolProtocol

extension Daemon {
    /// Opens the job history in the configured state directory and reads it, before the event loop
    /// serves; nil when the configuration names no state directory. An unusable directory or file
    /// stops the start: a daemon that silently kept no history would lose what the operator
    /// expects to find after the next restart. A damaged file is moved aside with what can be
    /// read of it kept, and rows with ids no poold hands out are set aside: both are logged.
    static func openHistory(configuration: DaemonConfiguration, logger: Logger) throws(HistoryError) -> (store: JobHistory, recovered: RecoveredHistory)? {
        guard let directory = configuration.stateDirectory else { return nil }
        let history = try JobHistory.open(directory: directory, limit: configuration.historyLimit, logger: logger)
        if let damage = history.damage {
            logger.error("job history: \(damage)")
        }
        let recovered: RecoveredHistory
        do {
            recovered = try history.recover()
        } catch {
            history.close()
            throw error
        }
        logger.info("job history loaded from \(history.path): \(recovered.records.count) jobs (keeping at most \(configuration.historyLimit)); the next job is \(recovered.highestID + 1)",
                    metadata: ["path": "\(history.path)", "jobs": "\(recovered.records.count)",
                                                     "limit": "\(configuration.historyLimit)", "nextJob": "\(recovered.highestID + 1)"])
        if !recovered.setAside.isEmpty {
            logger.warning("job history: rows with ids no poold hands out (outside 1...\(JobID.maximum)) were moved to the table job_set_aside of \(history.path) and are not listed",
                           metadata: ["ids": "\(recovered.setAside)"])
        }
        if !recovered.interrupted.isEmpty {
            logger.warning("jobs \(recovered.interrupted.map(String.init).joined(separator: ", ")), which the previous daemon left unfinished, are marked interrupted",
                           metadata: ["jobs": "\(recovered.interrupted)"])
        }
        for problem in recovered.unreadable {
            logger.warning("job history: a row cannot be read and is not listed: \(problem)")
        }
        return (history, recovered)
    }
}
