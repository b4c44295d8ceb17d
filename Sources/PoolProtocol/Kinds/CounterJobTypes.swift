/// How the counter job's workers update the shared counter: the notebook's section 3.
public enum CounterMode: String, Codable, Sendable, CaseIterable {
    /// A separate load and store: updates are lost when workers interleave (no undefined behaviour:
    /// both are relaxed atomics, the race is between them).
    case unsafe
    /// Every update under a process-shared robust mutex: the notebook's Lock.
    case locked
    /// One atomic fetch-add per update.
    case atomic
}

public struct CounterParameters: Codable, Sendable, Equatable {
    public var mode: CounterMode
    public var workers: Int
    /// Updates per worker.
    public var iterations: Int
    public var start: Int
    /// The notebook's cell: half the workers add, the others subtract, and the last one does one
    /// more update, so a correct run ends at `start - 1`.
    public var split: Bool

    public init(mode: CounterMode = .locked, workers: Int = 2, iterations: Int = 1_000_000, start: Int = 10, split: Bool = true) {
        self.mode = mode
        self.workers = workers
        self.iterations = iterations
        self.start = start
        self.split = split
    }
}

public struct CounterWorkerResult: Codable, Sendable, Equatable {
    public var slot: Int
    public var pid: Int
    /// +1 or -1.
    public var delta: Int
    public var operations: Int
    public var durationSeconds: Double

    public init(slot: Int, pid: Int, delta: Int, operations: Int, durationSeconds: Double) {
        self.slot = slot
        self.pid = pid
        self.delta = delta
        self.operations = operations
        self.durationSeconds = durationSeconds
    }
}

public struct CounterResult: JobResult {
    public static let kind = "counter"

    public var mode: CounterMode
    public var start: Int
    public var expected: Int
    public var actual: Int
    /// Updates that another worker's store overwrote. In `unsafe` mode the count is exact and
    /// split into `lostIncrements + lostDecrements` (with --split a lost increment and a lost
    /// decrement cancel out in the counter, so `|expected - actual|` can be 0 with updates lost).
    /// The exact modes lose none; there it is `|expected - actual|`.
    public var lost: Int
    /// Unsafe mode: additions and subtractions that were lost (nil in the other modes).
    public var lostIncrements: Int?
    public var lostDecrements: Int?
    public var operations: Int
    public var durationSeconds: Double
    public var opsPerSecond: Double
    /// Times a locker found the previous holder dead (EOWNERDEAD) and recovered the lock.
    public var lockRecoveries: Int
    public var workers: [CounterWorkerResult]

    public init(mode: CounterMode, start: Int, expected: Int, actual: Int, lost: Int, lostIncrements: Int? = nil,
                lostDecrements: Int? = nil, operations: Int, durationSeconds: Double, opsPerSecond: Double,
                lockRecoveries: Int, workers: [CounterWorkerResult]) {
        self.mode = mode
        self.start = start
        self.expected = expected
        self.actual = actual
        self.lost = lost
        self.lostIncrements = lostIncrements
        self.lostDecrements = lostDecrements
        self.operations = operations
        self.durationSeconds = durationSeconds
        self.opsPerSecond = opsPerSecond
        self.lockRecoveries = lockRecoveries
        self.workers = workers
    }
}

extension CounterResult {
    public var summary: String { "\(mode.rawValue): counter = \(actual), expected \(expected), lost \(lost)" }
}
