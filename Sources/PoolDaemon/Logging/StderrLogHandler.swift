import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Readable records on stderr for a daemon run by hand, in the notebook's form:
/// `(worker-2   ) message key=value`. One `write(2)` per record, so that the lines of the daemon
/// and of its workers (which share the descriptor) never interleave mid-line.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    /// Metadata the label already says (a worker's slot and pid), left off each line.
    private let omittedKeys: Set<String>

    public init(label: String, level: Logger.Level, omittedKeys: Set<String> = []) {
        self.label = label
        self.logLevel = level
        self.omittedKeys = omittedKeys
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "(" + label.padding(toLength: 11) + ") "
        if event.level >= .warning { line += event.level.rawValue.uppercased() + ": " }
        line += event.message.description
        let merged = Self.merge(metadata, event.metadata)
        for key in merged.keys.sorted() where key != MessageID.key && !omittedKeys.contains(key) {
            line += " "
            line += key
            line += "="
            line += merged[key]!.description
        }
        line += "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// The handler's metadata with the record's over it; most records bring all of theirs, and
    /// merging into an empty dictionary would copy it for nothing.
    static func merge(_ handler: Logger.Metadata, _ record: Logger.Metadata?) -> Logger.Metadata {
        guard let record else { return handler }
        return handler.isEmpty ? record : handler.merging(record) { $1 }
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
