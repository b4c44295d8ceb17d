import Logging
@testable import PoolDaemon
import Testing

/// The stderr handler writes each record into one buffer: the line must be, byte for byte, the
/// one it built from strings before (`expectedLine`, that code kept here as the reference).
struct StderrLogHandlerTests {
    /// The line as the handler built it with string concatenation and a merged dictionary.
    private static func expectedLine(label: String, handler: Logger.Metadata, omitted: Set<String>, event: LogEvent) -> String {
        let padded = label.count >= 11 ? label : label + String(repeating: " ", count: 11 - label.count)
        var line = "(" + padded + ") "
        if event.level >= .warning { line += event.level.rawValue.uppercased() + ": " }
        line += event.message.description
        let merged = event.metadata.map { handler.merging($0) { $1 } } ?? handler
        for key in merged.keys.sorted() where key != MessageID.key && !omitted.contains(key) {
            line += " " + key + "=" + merged[key]!.description
        }
        return line + "\n"
    }

    private static func line(of handler: StderrLogHandler, _ event: LogEvent) -> String {
        handler.withLine(for: event) { String(decoding: $0, as: UTF8.self) }
    }

    private static func event(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata?) -> LogEvent {
        LogEvent(level: level, message: "\(message)", metadata: metadata, source: nil, file: #fileID, function: #function, line: #line)
    }

    @Test func linesAreTheOnesTheStringsMade() {
        let long = String(repeating: "0123456789é", count: 600)
        let metadatas: [Logger.Metadata?] = [
            nil, [:],
            ["job": "7", "kind": "tasks", "slots": "0", MessageID.key: MessageID.jobStarted],
            ["seconds": "0.001", "state": "succeeded", "job": "12", "kind": "tasks", "error": "line\nbreak = \"quoted\""],
            ["zeta": "1", "Alpha": "2", "älpha": "3", "alpha": "4", "_": "5", "10": "6", "9": "7"],
            ["list": .array(["a", "b"]), "table": .dictionary(["k": "v"]), "number": .stringConvertible(42)],
            ["slot": "1", "pid": "99", "text": "\(long)"],
        ]
        let handlers: [(label: String, metadata: Logger.Metadata, omitted: Set<String>)] = [
            ("poold", [:], []),
            ("worker-2", ["slot": "2", "pid": "1234"], ["slot", "pid", "job", "kind"]),
            ("a-label-longer-than-eleven", ["job": "handler's", "extra": "from the handler"], []),
            ("ünïcødé", [MessageID.key: MessageID.jobFailed], ["text"]),
        ]
        for (label, handlerMetadata, omitted) in handlers {
            var handler = StderrLogHandler(label: label, level: .trace, omittedKeys: omitted)
            handler.metadata = handlerMetadata
            for level in Logger.Level.allCases {
                for metadata in metadatas {
                    for message in ["job 7 (tasks) started on slot 0", "", long] {
                        let event = Self.event(level, message, metadata)
                        #expect(Self.line(of: handler, event) == Self.expectedLine(label: label, handler: handlerMetadata, omitted: omitted, event: event),
                                "\(label) \(level) \(String(describing: metadata).prefix(80))")
                    }
                }
            }
        }
    }
}
