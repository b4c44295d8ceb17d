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
    /// Metadata the label and the job's log already say (a worker's slot, pid, job and kind), left
    /// off each line. A list: it holds four keys at most, compared faster than a set hashes one.
    private let omittedKeys: [String]

    public init(label: String, level: Logger.Level, omittedKeys: Set<String> = []) {
        self.linePrefix = Array(("(" + label.padding(toLength: 11) + ") ").utf8)
        self.logLevel = level
        self.omittedKeys = Array(omittedKeys)
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

    /// The record's line, newline included, handed to `body`: written into one buffer on the stack
    /// (no string is built per part and no dictionary is merged; a long line's buffer is on the
    /// heap), with the metadata in key order, the handler's under the record's.
    func withLine<R>(for event: LogEvent, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let level: StaticString
        switch event.level {
        case .warning: level = "WARNING: "
        case .error: level = "ERROR: "
        case .critical: level = "CRITICAL: "
        case .trace, .debug, .info, .notice: level = ""
        }
        let message = event.message.description
        let record = event.metadata ?? [:]
        let handler = metadata
        return try withUnsafeTemporaryAllocation(of: (key: String, value: String).self, capacity: record.count + handler.count) { entries in
            var count = 0
            func add(_ key: String, _ value: Logger.MetadataValue) {
                guard key != MessageID.key, !omittedKeys.contains(key) else { return }
                (entries.baseAddress! + count).initialize(to: (key, value.description))
                count += 1
            }
            for (key, value) in record { add(key, value) }
            for (key, value) in handler where record.isEmpty || record[key] == nil { add(key, value) }
            defer { if count > 0 { entries.baseAddress!.deinitialize(count: count) } }
            var sorted = UnsafeMutableBufferPointer(rebasing: entries[..<count])
            sorted.sort { $0.key < $1.key }
            var length = linePrefix.count + level.utf8CodeUnitCount + message.utf8.count + 1
            for entry in sorted { length += 2 + entry.key.utf8.count + entry.value.utf8.count }
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { line in
                var end = 0
                func append(_ bytes: UnsafeBufferPointer<UInt8>) {
                    guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
                    (line.baseAddress! + end).initialize(from: source, count: bytes.count)
                    end += bytes.count
                }
                func append(_ text: String) {
                    var text = text
                    text.withUTF8 { append($0) }
                }
                func append(_ byte: UInt8) {
                    line[end] = byte
                    end += 1
                }
                linePrefix.withUnsafeBufferPointer { append($0) }
                level.withUTF8Buffer { append($0) }
                append(message)
                for entry in sorted {
                    append(UInt8(ascii: " "))
                    append(entry.key)
                    append(UInt8(ascii: "="))
                    append(entry.value)
                }
                append(UInt8(ascii: "\n"))
                return try body(UnsafeBufferPointer(rebasing: line[..<end]))
            }
        }
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
