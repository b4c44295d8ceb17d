import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `/etc/poold.conf`: `key = value` lines, `#` comments. Read at start and on SIGHUP (which
/// applies `workers`; `drain-timeout` takes effect at the next start).
///
///     workers = 4
///     control-group = poold
///     drain-timeout = 30s
public struct ConfigurationFile: Sendable, Equatable {
    public var workers: Int?
    /// The group whose members may drive the pool (read at start; a reload does not change it).
    public var controlGroup: String?
    /// How long running jobs may finish on SIGTERM (`--drain-timeout`).
    public var drainTimeout: Duration?

    public init(workers: Int? = nil, controlGroup: String? = nil, drainTimeout: Duration? = nil) {
        self.workers = workers
        self.controlGroup = controlGroup
        self.drainTimeout = drainTimeout
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    public static func read(path: String) throws(Problem) -> ConfigurationFile {
        guard let file = fopen(path, "r") else {
            throw Problem(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws(Problem) -> ConfigurationFile {
        var result = ConfigurationFile()
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            guard !trimmed.isEmpty else { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.split(separator: " ").joined(separator: " ") }
            guard parts.count == 2 else {
                throw Problem(description: "\(path):\(number + 1): expected `key = value`, found `\(trimmed)`")
            }
            switch parts[0] {
            case "workers":
                guard let workers = Int(parts[1]), workers >= 1 else {
                    throw Problem(description: "\(path):\(number + 1): workers must be a whole number of at least 1")
                }
                result.workers = workers
            case "control-group":
                result.controlGroup = parts[1]
            case "drain-timeout":
                guard let nanos = DurationText.nanoseconds(parts[1]) else {
                    throw Problem(description: "\(path):\(number + 1): drain-timeout must be a duration such as 30s, 500ms or 0")
                }
                result.drainTimeout = .nanoseconds(nanos)
            default:
                throw Problem(description: "\(path):\(number + 1): unknown key `\(parts[0])` (known: workers, control-group, drain-timeout)")
            }
        }
        return result
    }
}
