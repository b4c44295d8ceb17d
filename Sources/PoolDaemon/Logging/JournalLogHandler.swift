import CSystemd
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Structured records straight to journald (sd_journal_sendv): MESSAGE, PRIORITY,
/// SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, MESSAGE_ID when given, and the metadata as fields:
/// `job`, `kind`, `slot` and `pid` become POOLD_JOB_ID, POOLD_JOB_KIND, POOLD_WORKER and
/// POOLD_WORKER_PID, which `journalctl POOLD_JOB_ID=7` and `poolctl logs 7` match on; any other key
/// becomes POOLD_<KEY>, upper-cased and sanitised (journald silently drops invalid field names).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let identifier: String
    /// POOLD_INSTANCE, on every record (see PoolInstance).
    private let instance: String?
    /// Before each message: a worker's records name their slot in the text too ("slot 1: I'm the
    /// task 3"), so that `journalctl -o cat` says who wrote them.
    private let messagePrefix: String

    public init(identifier: String = "poold", level: Logger.Level, instance: String? = nil, messagePrefix: String = "") {
        self.identifier = identifier
        self.logLevel = level
        self.instance = instance
        self.messagePrefix = messagePrefix
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Where records should go when nothing says otherwise: the journal when stderr already is the
    /// journal (JOURNAL_STREAM, as under systemd) or when journald listens and no terminal is
    /// watching stderr; stderr otherwise.
    public static func journalIsTheDefault(environment: [String: String]) -> Bool {
        if environment["JOURNAL_STREAM"] != nil { return true }
        return access("/run/systemd/journal/socket", F_OK) == 0 && isatty(2) == 0
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=" + messagePrefix + event.message.description,
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=" + identifier,
            "CODE_FILE=" + event.file,
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=" + event.function,
        ]
        if let instance { fields.append("POOLD_INSTANCE=" + instance) }
        let merged = StderrLogHandler.merge(metadata, event.metadata)
        for (key, value) in merged {
            fields.append((key == MessageID.key ? "MESSAGE_ID" : Self.fieldName(key)) + "=" + "\(value)")
        }
        Self.send(fields)
    }

    /// The fields, one after another in one buffer (one allocation, not one per field), each its
    /// own iovec.
    static func send(_ fields: [String]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count })
        var ends: [Int] = []
        ends.reserveCapacity(fields.count)
        for field in fields {
            bytes.append(contentsOf: field.utf8)
            ends.append(bytes.count)
        }
        bytes.withUnsafeMutableBytes { buffer in
            var start = 0
            var vectors = ends.map { end in
                defer { start = end }
                return iovec(iov_base: buffer.baseAddress.map { $0 + start }, iov_len: end - start)
            }
            _ = sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }

    /// The journal field for a metadata key.
    public static func fieldName(_ key: String) -> String {
        switch key {
        case "job": return "POOLD_JOB_ID"
        case "kind": return "POOLD_JOB_KIND"
        case "slot": return "POOLD_WORKER"
        case "pid": return "POOLD_WORKER_PID"
        default:
            // Field names: upper-case ASCII letters, digits and underscores, not starting with an
            // underscore or a digit (those are journald's own), at most 64 bytes.
            var name = "POOLD_"
            var lastWasUnderscore = true
            for scalar in key.unicodeScalars {
                if scalar.isASCII, scalar.properties.isUppercase || scalar.properties.isLowercase || ("0"..."9").contains(scalar) {
                    if scalar.properties.isUppercase, !lastWasUnderscore { name += "_" }
                    name += String(scalar).uppercased()
                    lastWasUnderscore = false
                } else if !lastWasUnderscore {
                    name += "_"
                    lastWasUnderscore = true
                }
            }
            while name.hasSuffix("_") { name.removeLast() }
            return String(name.prefix(64))
        }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}
