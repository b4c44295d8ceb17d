import Logging

/// Where the daemon and its workers write their records.
public enum LogTarget: String, CaseIterable, Sendable {
    /// The journal when it is there (see `JournalLogHandler.journalIsTheDefault`), else stderr.
    case auto
    case journal
    case stderr

    /// `auto` decided for this environment.
    public func resolved(environment: [String: String]) -> LogTarget {
        guard self == .auto else { return self }
        return JournalLogHandler.journalIsTheDefault(environment: environment) ? .journal : .stderr
    }

    /// A logger for the daemon (`poold`) or a worker (`worker-N`, whose lines need not repeat the
    /// slot, pid and job the label and the job's log already give).
    /// `instance`: the pool's identity, on every journal record (see PoolInstance). A worker's
    /// journal records name its slot in their text; on stderr the label does.
    public func logger(label: String, level: Logger.Level, isWorker: Bool = false, slot: Int? = nil, instance: String? = nil) -> Logger {
        switch self {
        case .journal:
            let prefix = slot.map { "slot \($0): " } ?? ""
            return Logger(label: label) { _ in JournalLogHandler(level: level, instance: instance, messagePrefix: prefix) }
        case .auto, .stderr:
            let omitted: Set<String> = isWorker ? ["slot", "pid", "job", "kind"] : []
            return Logger(label: label) { StderrLogHandler(label: $0, level: level, omittedKeys: omitted) }
        }
    }
}
