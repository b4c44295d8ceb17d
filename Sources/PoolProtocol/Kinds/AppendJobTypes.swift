/// Where the append job's workers append: to one string in shared memory, or each to its own copy.
public enum AppendMemory: String, Codable, Sendable, CaseIterable {
    case shared
    case `private`
}

/// The append job's parameters as a job reports them (every default filled in): per worker, its
/// character, its count of appends and the pause between them.
public struct AppendParameters: Codable, Sendable, Equatable {
    public var workers: Int
    public var chars: String
    public var counts: [Int]
    /// Durations as text (`600ms`).
    public var intervals: [String]
    public var memory: AppendMemory

    public init(workers: Int, chars: String, counts: [Int], intervals: [String], memory: AppendMemory) {
        self.workers = workers
        self.chars = chars
        self.counts = counts
        self.intervals = intervals
        self.memory = memory
    }
}

/// The string the workers built. Shared memory: the one string (`text`, its `length` of the
/// `expectedLength`). Private memory: each worker's own copy (`copies`) and the daemon's, which
/// nobody could append to (`daemonCopy`, empty).
public struct AppendResult: JobResult {
    public static let kind = "append"

    public var memory: AppendMemory
    public var text: String?
    public var length: Int?
    public var expectedLength: Int?
    public var daemonCopy: String?
    public var copies: [AppendCopy]?

    public static func shared(text: String, length: Int, expectedLength: Int) -> AppendResult {
        AppendResult(memory: .shared, text: text, length: length, expectedLength: expectedLength)
    }

    public static func `private`(copies: [AppendCopy]) -> AppendResult {
        AppendResult(memory: .private, daemonCopy: "", copies: copies)
    }

    private init(memory: AppendMemory, text: String? = nil, length: Int? = nil, expectedLength: Int? = nil,
                 daemonCopy: String? = nil, copies: [AppendCopy]? = nil) {
        self.memory = memory
        self.text = text
        self.length = length
        self.expectedLength = expectedLength
        self.daemonCopy = daemonCopy
        self.copies = copies
    }
}

/// A worker's private copy of the string.
public struct AppendCopy: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var text: String

    public init(participant: Int, slot: Int, text: String) {
        self.participant = participant
        self.slot = slot
        self.text = text
    }
}

extension AppendResult {
    public var summary: String { text ?? "private copies; daemon's copy empty" }
}
