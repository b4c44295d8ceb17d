import Foundation
import PoolProtocol

/// Writing results: human text, or JSON on stdout and nothing else.
enum Output {
    static func json(_ value: some Encodable, pretty: Bool = true) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data(("poolctl: " + text + "\n").utf8))
    }

    static func info(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> String {
        seconds >= 1 ? String(format: "%.2fs", seconds) : String(format: "%.1fms", seconds * 1000)
    }

    static func rate(_ perSecond: Double) -> String {
        switch perSecond {
        case 1e9...: return String(format: "%.2fG", perSecond / 1e9)
        case 1e6...: return String(format: "%.2fM", perSecond / 1e6)
        case 1e3...: return String(format: "%.1fk", perSecond / 1e3)
        default: return String(format: "%.0f", perSecond)
        }
    }

    /// A table with left-aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) {
        tableLines(header, rows).forEach(line)
    }

    static func tableLines(_ header: [String], _ rows: [[String]]) -> [String] {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
    }
}
