import CSystemd
import Logging
import PoolProtocol
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
        withFields(for: event) { bytes, ends in
            var start = 0
            var vectors = ends.map { end in
                defer { start = end }
                return iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress.map { $0 + start }), iov_len: end - start)
            }
            _ = sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }

    /// The record's fields (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_*, POOLD_INSTANCE, then the
    /// metadata, the handler's under the record's), one after another in one buffer, and where
    /// each ends: no string is made per field, nor a dictionary merged.
    func withFields<R>(for event: LogEvent, _ body: (UnsafeBufferPointer<UInt8>, [Int]) throws -> R) rethrows -> R {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + messagePrefix.utf8.count + event.file.utf8.count + event.function.utf8.count)
        var ends: [Int] = []
        ends.reserveCapacity(8 + (event.metadata?.count ?? 0) + metadata.count)
        func raw(_ text: StaticString) {
            text.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }
        func field(_ name: StaticString, _ value: String) {
            raw(name)
            bytes.append(contentsOf: value.utf8)
            ends.append(bytes.count)
        }
        raw("MESSAGE=")
        bytes.append(contentsOf: messagePrefix.utf8)
        field("", event.message.description)
        raw("PRIORITY=")
        bytes.appendDecimal(Int64(Self.priority(event.level)))
        ends.append(bytes.count)
        field("SYSLOG_IDENTIFIER=", identifier)
        field("CODE_FILE=", event.file)
        raw("CODE_LINE=")
        bytes.appendDecimal(magnitude: UInt64(event.line))
        ends.append(bytes.count)
        field("CODE_FUNC=", event.function)
        if let instance { field("POOLD_INSTANCE=", instance) }
        func add(_ key: String, _ value: Logger.MetadataValue) {
            if key == MessageID.key {
                raw("MESSAGE_ID")
            } else {
                Self.appendFieldName(key, to: &bytes)
            }
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.description.utf8)
            ends.append(bytes.count)
        }
        let record = event.metadata ?? [:]
        for (key, value) in record { add(key, value) }
        for (key, value) in metadata where record.isEmpty || record[key] == nil { add(key, value) }
        return try bytes.withUnsafeBufferPointer { try body($0, ends) }
    }

    /// The journal field for a metadata key.
    public static func fieldName(_ key: String) -> String {
        var name: [UInt8] = []
        appendFieldName(key, to: &name)
        return String(decoding: name, as: UTF8.self)
    }

    /// `fieldName(key)`, appended to `bytes` byte by byte (no string made per character).
    static func appendFieldName(_ key: String, to bytes: inout [UInt8]) {
        let known: StaticString?
        switch key {
        case "job": known = "POOLD_JOB_ID"
        case "kind": known = "POOLD_JOB_KIND"
        case "slot": known = "POOLD_WORKER"
        case "pid": known = "POOLD_WORKER_PID"
        default: known = nil
        }
        if let known {
            known.withUTF8Buffer { bytes.append(contentsOf: $0) }
            return
        }
        // Field names: upper-case ASCII letters, digits and underscores, not starting with an
        // underscore or a digit (those are journald's own), at most 64 bytes. Every byte of a
        // character that is not an ASCII letter or digit is >= 0x80 or not one either: each is a
        // separator, and a run of them one underscore.
        let start = bytes.count
        bytes.append(contentsOf: "POOLD_".utf8)
        var lastWasUnderscore = true
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                if !lastWasUnderscore { bytes.append(UInt8(ascii: "_")) }
                bytes.append(byte)
                lastWasUnderscore = false
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                bytes.append(byte - 0x20)
                lastWasUnderscore = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                bytes.append(byte)
                lastWasUnderscore = false
            default:
                if !lastWasUnderscore {
                    bytes.append(UInt8(ascii: "_"))
                    lastWasUnderscore = true
                }
            }
        }
        while bytes.count > start, bytes[bytes.count - 1] == UInt8(ascii: "_") { bytes.removeLast() }
        if bytes.count - start > 64 { bytes.removeLast(bytes.count - start - 64) }
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
