/// The lockcell job's parameters as a job reports them (every default filled in).
public struct LockCellParameters: Codable, Sendable, Equatable {
    public var workers: Int
    public var increments: Int
    /// The sleep before each increment: a duration, or a range `low..high` drawn from.
    public var pause: String
    /// The seed of the sleeps (a new one each run unless given).
    public var seed: Int

    public init(workers: Int, increments: Int, pause: String, seed: Int) {
        self.workers = workers
        self.increments = increments
        self.pause = pause
        self.seed = seed
    }
}

/// The counter the lockcell job's workers incremented under the lock.
public struct LockCellResult: JobResult {
    public static let kind = "lockcell"

    public var counter: Int
    public var expected: Int
    /// Times a locker found the holder dead (EOWNERDEAD) and made the lock usable again.
    public var lockRecoveries: Int
    public var workers: [LockCellWorker]

    public init(counter: Int, expected: Int, lockRecoveries: Int, workers: [LockCellWorker]) {
        self.counter = counter
        self.expected = expected
        self.lockRecoveries = lockRecoveries
        self.workers = workers
    }
}

public struct LockCellWorker: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var pid: Int
    public var increments: Int

    public init(participant: Int, slot: Int, pid: Int, increments: Int) {
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.increments = increments
    }
}

extension LockCellResult {
    public var summary: String { "Counter: \(counter), expected \(expected)" }
}
