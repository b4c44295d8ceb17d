/// The names of every IPC object an instance creates, all under one prefix (such as
/// `/poold-4711`), so that the objects of an instance can be told apart from any other's and
/// removed together.
public struct IPCNames: Sendable, Equatable {
    /// Starts with `/` and contains no other slash, as shm_open and mq_open require.
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// The default prefix: the daemon's pid makes it unique among live instances.
    public static func forProcess(_ pid: Int32) -> IPCNames {
        IPCNames(prefix: "/poold-\(pid)")
    }

    /// Checks a user-given prefix; returns why it is unusable, or nil.
    public static func problem(with prefix: String) -> String? {
        guard prefix.hasPrefix("/poold") else { return "the IPC prefix must start with /poold (it is \(prefix))" }
        guard !prefix.dropFirst().contains("/") else { return "the IPC prefix may contain no slash after the first" }
        guard prefix.utf8.count <= 64 else { return "the IPC prefix may be at most 64 bytes" }
        guard prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/-_.".contains($0)) }) else {
            return "the IPC prefix may contain only ASCII letters, digits, '-', '_' and '.'"
        }
        return nil
    }

    public var scoreboard: String { prefix + ".scoreboard" }
    public var events: String { prefix + ".events" }
    public func commands(slot: Int) -> String { prefix + ".slot\(slot).commands" }
    public func job(_ id: Int) -> String { prefix + ".job\(id)" }
}
