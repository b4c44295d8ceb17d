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
    /// `(label      ) `, as every line starts, made once.
    private let linePrefix: [UInt8]
    /// Metadata the label already says (a worker's slot and pid), left off each line.
    private let omittedKeys: Set<String>

    public init(label: String, level: Logger.Level, omittedKeys: Set<String> = []) {
        self.linePrefix = Array(("(" + label.padding(toLength: 11) + ") ").utf8)
        self.logLevel = level
        self.omittedKeys = omittedKeys
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        withLine(for: event) { bytes in
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

    /// The record's line, newline included, handed to `body`: written into one byte array sized
    /// up front (no string is built per part and no dictionary is merged), with the metadata in
    /// key order, the handler's under the record's.
    func withLine<R>(for event: LogEvent, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let level: StaticString
        switch event.level {
        case .warning: level = "WARNING: "
        case .error: level = "ERROR: "
        case .critical: level = "CRITICAL: "
        case .trace, .debug, .info, .notice: level = ""
        }
        let record = event.metadata ?? [:]
        var entries: [(key: String, value: String)] = []
        entries.reserveCapacity(record.count + metadata.count)
        for (key, value) in record { entries.append((key, value.description)) }
        for (key, value) in metadata where record[key] == nil { entries.append((key, value.description)) }
        entries.removeAll { $0.key == MessageID.key || omittedKeys.contains($0.key) }
        entries.sort { $0.key < $1.key }
        let message = event.message.description
        var line: [UInt8] = []
        line.reserveCapacity(linePrefix.count + level.utf8CodeUnitCount + message.utf8.count + 1
            + entries.reduce(0) { $0 + 2 + $1.key.utf8.count + $1.value.utf8.count })
        line.append(contentsOf: linePrefix)
        level.withUTF8Buffer { line.append(contentsOf: $0) }
        line.append(contentsOf: message.utf8)
        for entry in entries {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: entry.key.utf8)
            line.append(UInt8(ascii: "="))
            line.append(contentsOf: entry.value.utf8)
        }
        line.append(UInt8(ascii: "\n"))
        return try line.withUnsafeBufferPointer(body)
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
