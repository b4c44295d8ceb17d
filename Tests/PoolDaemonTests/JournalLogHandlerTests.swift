import Logging
@testable import PoolDaemon
import Testing

/// The journal handler writes a record's fields into one buffer: each field must be the one it
/// built as a string before (`expectedFields`, that code kept here as the reference).
struct JournalLogHandlerTests {
    /// The field name as it was made, a string per character.
    private static func expectedFieldName(_ key: String) -> String {
        switch key {
        case "job": return "POOLD_JOB_ID"
        case "kind": return "POOLD_JOB_KIND"
        case "slot": return "POOLD_WORKER"
        case "pid": return "POOLD_WORKER_PID"
        default:
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

    private static func expectedFields(_ event: LogEvent, handler: Logger.Metadata, prefix: String, instance: String?) -> [String] {
        var fields = [
            "MESSAGE=" + prefix + event.message.description,
            "PRIORITY=\(JournalLogHandler.priority(event.level))",
            "SYSLOG_IDENTIFIER=poold",
            "CODE_FILE=" + event.file,
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=" + event.function,
        ]
        if let instance { fields.append("POOLD_INSTANCE=" + instance) }
        let merged = event.metadata.map { handler.merging($0) { $1 } } ?? handler
        for (key, value) in merged {
            fields.append((key == MessageID.key ? "MESSAGE_ID" : expectedFieldName(key)) + "=" + "\(value)")
        }
        return fields
    }

    @Test func fieldNamesAreTheOnesTheStringsMade() {
        let keys = ["job", "kind", "slot", "pid", "seconds", "delayMillis", "afterJob", "HTTPServer", "a-b--c", "_x_", "9lives", "",
                    "__", "ünïcødé key", "tab\there", "emoji🙂Key", "x.y.Z", "ÄBC", String(repeating: "longKey", count: 20), "ǅigraph", "ǉ"]
        for key in keys {
            #expect(JournalLogHandler.fieldName(key) == Self.expectedFieldName(key), "\(key)")
        }
    }

    @Test func fieldsAreTheOnesTheStringsMade() {
        let metadatas: [Logger.Metadata?] = [
            nil, [:],
            ["job": "7", "kind": "tasks", "slots": "0", MessageID.key: MessageID.jobStarted],
            ["seconds": "0.001", "state": "succeeded", "error": "line\nbreak", "list": .array(["a"]), "n": .stringConvertible(42)],
        ]
        let handlers: [Logger.Metadata] = [[:], ["slot": "2", "pid": "1234"], ["job": "handler's", "extra": "e"]]
        for (prefix, instance) in [("", nil), ("slot 1: ", "0123abc")] {
            for handlerMetadata in handlers {
                var handler = JournalLogHandler(level: .trace, instance: instance, messagePrefix: prefix)
                handler.metadata = handlerMetadata
                for level in Logger.Level.allCases {
                    for metadata in metadatas {
                        let event = LogEvent(level: level, message: "job 7 (tasks) started on slot 0 é", metadata: metadata, source: nil,
                                             file: #fileID, function: #function, line: #line)
                        let fields = handler.withFields(for: event) { bytes, ends in
                            var start = 0
                            return ends.map { end in
                                defer { start = end }
                                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                            }
                        }
                        let expected = Self.expectedFields(event, handler: handlerMetadata, prefix: prefix, instance: instance)
                        // The fixed fields in their order; the metadata's order was the dictionary's.
                        let fixed = instance == nil ? 6 : 7
                        #expect(Array(fields.prefix(fixed)) == Array(expected.prefix(fixed)))
                        #expect(fields.dropFirst(fixed).sorted() == expected.dropFirst(fixed).sorted())
                    }
                }
            }
        }
    }
}
