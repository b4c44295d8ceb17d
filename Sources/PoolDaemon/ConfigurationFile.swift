#if canImport(Glibc)
import Glibc
#endif

/// `/etc/poold.conf`: `key = value` lines, `#` comments. A key is one of poold's options without
/// its dashes, and the command line wins over the file. Read at start; SIGHUP re-reads it and
/// applies `workers` (the pool is resized), the other keys take effect at the next start.
///
///     workers = 4
///     control-group = poold
///     drain-timeout = 30s
///     history-limit = 5000
public struct ConfigurationFile: Sendable, Equatable {
    /// Every option of `poold` but `--config` itself (and the hidden testing switches).
    public static let keys = [
        "socket", "workers", "max-workers", "ipc-prefix", "log-level", "log-target", "heartbeat-timeout",
        "drain-timeout", "state-dir", "history-limit", "control-group", "client-timeout", "idle-timeout",
        "max-connections", "max-connections-per-uid", "max-queued-jobs", "socket-mode", "job-log-rate",
    ]

    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: String
        public let line: Int
    }

    /// In file order; a key given twice counts once, with its last value.
    public private(set) var entries: [Entry] = []

    public init() {}

    /// The pool size: the one key a reload applies, so checked here.
    public var workers: Int? { value("workers").flatMap { Int($0) } }

    public func value(_ key: String) -> String? {
        entries.last { $0.key == key }?.value
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// `--config`'s value: a path, or `-PATH` for a file that may be missing (as systemd's
    /// `EnvironmentFile=-PATH`), so that the packaged service starts without /etc/poold.conf.
    public static func load(_ reference: String) throws(Problem) -> ConfigurationFile {
        guard reference.hasPrefix("-") else { return try read(path: reference) }
        let path = String(reference.dropFirst())
        if access(path, F_OK) != 0, errno == ENOENT { return ConfigurationFile() }
        return try read(path: path)
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
            guard parts.count == 2, !parts[1].isEmpty else {
                throw Problem(description: "\(path):\(number + 1): expected `key = value`, found `\(trimmed)`")
            }
            guard keys.contains(parts[0]) else {
                throw Problem(description: "\(path):\(number + 1): unknown key `\(parts[0])` (known: \(keys.joined(separator: ", ")))")
            }
            if parts[0] == "workers", (Int(parts[1]) ?? 0) < 1 {
                throw Problem(description: "\(path):\(number + 1): workers must be a whole number of at least 1")
            }
            result.entries.append(Entry(key: parts[0], value: parts[1], line: number + 1))
        }
        return result
    }
}
