import ArgumentParser
import PoolProtocol

/// Collects the options a user gave into a job's parameters object; unset ones are left to the
/// daemon's defaults (the notebook's cells).
struct ParameterBuilder {
    private(set) var fields: [String: JSONValue] = [:]

    mutating func set(_ name: String, _ value: Int?) { if let value { fields[name] = .number(Double(value)) } }
    mutating func set(_ name: String, _ value: String?) { if let value { fields[name] = .string(value) } }
    mutating func set(_ name: String, _ value: Bool?) { if let value { fields[name] = .bool(value) } }

    var object: JSONValue { .object(fields) }
}

struct ProdConsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prodcons",
        abstract: "The notebook's bounded queue: producers and consumers over one POSIX message queue.",
        discussion: "With no options it is the notebook's cell: 1 producer, 1 consumer, 10 items, capacity 10, random 0..1s pauses."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(help: "Producer processes (default 1).") var producers: Int?
    @Option(help: "Consumer processes (default 1).") var consumers: Int?
    @Option(help: "Items in all, split across the producers (default 10).") var items: Int?
    @Option(help: "Queue depth (default 10, at most /proc/sys/fs/mqueue/msg_max).") var capacity: Int?
    @Option(help: "Pause after each put, a duration or range such as 0..1s (default 0..1s for 100 items or fewer, else none).") var produceDelay: String?
    @Option(help: "Pause after each get (same default).") var consumeDelay: String?
    @Option(help: "Seed of the item and pause generator (default 1).") var seed: Int?
    @Option(help: "Bytes per item (default 8).") var payloadBytes: Int?
    @Option(help: "Items packed into one message (default 1).") var batch: Int?
    @Flag(help: "Log one line per put and get, as the notebook prints them.") var trace = false

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("producers", producers)
        parameters.set("consumers", consumers)
        parameters.set("items", items)
        parameters.set("capacity", capacity)
        parameters.set("produceDelay", produceDelay)
        parameters.set("consumeDelay", consumeDelay)
        parameters.set("seed", seed)
        parameters.set("payloadBytes", payloadBytes)
        parameters.set("batch", batch)
        parameters.set("trace", trace ? true : nil)
        try JobRunner(global: global, options: options).run(kind: "prodcons", parameters: parameters.object)
    }
}

struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "The notebook's Event: waiters block until the daemon sets it; timeout waiters wait with a timeout, in a loop."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(help: "Waiters without a timeout (default 1).") var waiters: Int?
    @Option(help: "Waiters with a timeout (default 1).") var timeoutWaiters: Int?
    @Option(help: "The timeout waiters' timeout per wait (default 2s); --timeout is the whole job's.") var waitTimeout: String?
    @Option(help: "When the daemon sets the event (default 500ms).") var setAfter: String?

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("waiters", waiters)
        parameters.set("timeoutWaiters", timeoutWaiters)
        parameters.set("timeout", waitTimeout)
        parameters.set("setAfter", setAfter)
        try JobRunner(global: global, options: options).run(kind: "event", parameters: parameters.object)
    }
}

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "The notebook's tasks with arguments: task i says \"I'm the task i\" on some worker."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(help: "Tasks to run (default 10).") var count: Int?
    @Option(help: "Workers to spread them over (default: as many as the pool has, at most one per task).") var workers: Int?

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("count", count)
        parameters.set("workers", workers)
        try JobRunner(global: global, options: options).run(kind: "tasks", parameters: parameters.object)
    }
}

struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "The notebook's section 2: workers append characters to a shared string, or to private copies."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(help: "Workers (default 2).") var workers: Int?
    @Option(help: "One character per worker, or one for all (default oO, repeated for more workers).") var chars: String?
    @Option(help: "Appends per worker, comma-separated, or one for all (default 10,20, repeated).") var counts: String?
    @Option(help: "Pause between appends per worker, or one for all (default 1s,600ms, repeated).") var intervals: String?
    @Option(help: "shared (one string, under a lock) or private (a copy each) (default shared).") var memory: String?

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("workers", workers)
        parameters.set("chars", chars)
        parameters.set("counts", counts)
        parameters.set("intervals", intervals)
        parameters.set("memory", memory)
        try JobRunner(global: global, options: options).run(kind: "append", parameters: parameters.object)
    }
}

struct LockCellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockcell",
        abstract: "The notebook's first Counter cell: workers sleep, wait for the lock, increment under it, twice.",
        discussion: "Each step is a line, as the notebook logs it (Sleeping 0.42, Waiting for lock, Acquired lock, Done), then Counter: 4."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(help: "Workers (default 2).") var workers: Int?
    @Option(help: "Increments per worker (default 2).") var increments: Int?
    @Option(help: "Sleep before each increment, a duration or range (default 0..1s).") var pause: String?
    @Option(help: "Seed of the sleeps (default: a new one each run, shown in the job's parameters).") var seed: Int?

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("workers", workers)
        parameters.set("increments", increments)
        parameters.set("pause", pause)
        parameters.set("seed", seed)
        try JobRunner(global: global, options: options).run(kind: "lockcell", parameters: parameters.object)
    }
}
