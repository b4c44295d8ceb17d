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
        abstract: "The notebook's bounded queue: producers and consumers over one POSIX message queue (or a shared-memory ring).",
        discussion: """
            With no options it is the notebook's cell: 1 producer, 1 consumer, 10 items, capacity 10, random 0..1s pauses.
            --transport shm puts the queue in the job's shared memory: a ring of --capacity slots (any number),
            each holding --batch items, with no system call unless a side has to sleep.

            Examples:
              poolctl run prodcons --trace
              poolctl run prodcons --trace --consume-delay 200ms
              poolctl run prodcons --items 1000000 --batch 32 --producers 2 --consumers 2
              poolctl run prodcons --transport shm --items 100000000 --capacity 1024 --batch 16
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Producer processes (default 1).") var producers: Int?
    @Option(parsing: .unconditional, help: "Consumer processes (default 1).") var consumers: Int?
    @Option(parsing: .unconditional, help: "Items in all, split across the producers (default 10).") var items: Int?
    @Option(parsing: .unconditional, help: "Queue depth in messages (default 10; over mq at most /proc/sys/fs/mqueue/msg_max).") var capacity: Int?
    @Option(help: "Pause after each put, a duration or range such as 0..1s (default 0..1s for 100 items or fewer, else none).") var produceDelay: String?
    @Option(help: "Pause after each get (same default).") var consumeDelay: String?
    @Option(parsing: .unconditional, help: "Seed of the item and pause generator (default 1).") var seed: Int?
    @Option(parsing: .unconditional, help: "Bytes per item (default 8).") var payloadBytes: Int?
    @Option(parsing: .unconditional, help: "Items packed into one message (default 1).") var batch: Int?
    @Flag(help: "Log one line per put and get, as the notebook prints them.") var trace = false
    @Option(help: "mq (a POSIX message queue, the default) or shm (a ring in shared memory).") var transport: ProdConsTransport?

    func validate() throws {
        for (value, option) in [(producers, "--producers"), (consumers, "--consumers"), (items, "--items"), (capacity, "--capacity"),
                                (payloadBytes, "--payload-bytes"), (batch, "--batch")] {
            try OptionChecks.atLeast(1, value, option)
        }
        try OptionChecks.durationOrRange(produceDelay, "--produce-delay")
        try OptionChecks.durationOrRange(consumeDelay, "--consume-delay")
    }

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
        parameters.set("transport", transport?.rawValue)
        try JobRunner(global: global, options: options).run(kind: "prodcons", parameters: parameters.object)
    }
}

struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "The notebook's Event: waiters block until the daemon sets it; timeout waiters wait with a timeout, in a loop.",
        discussion: """
            Examples:
              poolctl run event
              poolctl run event --waiters 0 --timeout-waiters 1 --wait-timeout 200ms --set-after 1s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Waiters without a timeout (default 1).") var waiters: Int?
    @Option(parsing: .unconditional, help: "Waiters with a timeout (default 1).") var timeoutWaiters: Int?
    @Option(help: "The timeout waiters' timeout per wait (default 2s); --timeout is the whole job's.") var waitTimeout: String?
    @Option(help: "When the daemon sets the event (default 500ms).") var setAfter: String?

    func validate() throws {
        try OptionChecks.atLeast(0, waiters, "--waiters")
        try OptionChecks.atLeast(0, timeoutWaiters, "--timeout-waiters")
        try OptionChecks.duration(waitTimeout, "--wait-timeout")
        try OptionChecks.duration(setAfter, "--set-after")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("waiters", waiters)
        parameters.set("timeoutWaiters", timeoutWaiters)
        parameters.set("timeout", waitTimeout)
        parameters.set("setAfter", setAfter)
        try JobRunner(global: global, options: options, optionNames: ["timeout": "--wait-timeout"]).run(kind: "event", parameters: parameters.object)
    }
}

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "The notebook's tasks with arguments: task i says \"I'm the task i\" on participant i mod n.",
        discussion: """
            Examples:
              poolctl run tasks
              poolctl run tasks --count 100 --workers 4
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Tasks to run (default 10).") var count: Int?
    @Option(parsing: .unconditional, help: "Workers to spread them over (default: as many as the pool has, at most one per task).") var workers: Int?

    func validate() throws {
        try OptionChecks.atLeast(1, count, "--count")
        try OptionChecks.atLeast(1, workers, "--workers")
    }

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
        abstract: "The notebook's section 2: workers append characters to a shared string, or to private copies.",
        discussion: """
            Examples:
              poolctl run append --memory private
              poolctl run append --chars oO --counts 10,20 --intervals 1s,600ms --memory shared
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Workers (default 2).") var workers: Int?
    @Option(help: "One character per worker, or one for all (default oO, repeated for more workers).") var chars: String?
    @Option(help: "Appends per worker, comma-separated, or one for all (default 10,20, repeated).") var counts: String?
    @Option(help: "Pause between appends per worker, or one for all (default 1s,600ms, repeated).") var intervals: String?
    @Option(help: "shared (one string, under a lock) or private (a copy each) (default shared).") var memory: String?

    func validate() throws {
        try OptionChecks.atLeast(1, workers, "--workers")
        if let memory, !["shared", "private"].contains(memory) {
            throw ValidationError("--memory must be shared or private, not '\(memory)'")
        }
    }

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
        discussion: """
            Each step is a line, as the notebook logs it (Sleeping 0.42, Waiting for lock, Acquired lock, Done), then Counter: 4.

            Examples:
              poolctl run lockcell
              poolctl run lockcell --workers 4 --increments 3 --pause 0..200ms
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Workers (default 2).") var workers: Int?
    @Option(parsing: .unconditional, help: "Increments per worker (default 2).") var increments: Int?
    @Option(help: "Sleep before each increment, a duration or range (default 0..1s).") var pause: String?
    @Option(parsing: .unconditional, help: "Seed of the sleeps (default: a new one each run, shown in the job's parameters).") var seed: Int?

    func validate() throws {
        try OptionChecks.atLeast(1, workers, "--workers")
        try OptionChecks.atLeast(1, increments, "--increments")
        try OptionChecks.durationOrRange(pause, "--pause")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("workers", workers)
        parameters.set("increments", increments)
        parameters.set("pause", pause)
        parameters.set("seed", seed)
        try JobRunner(global: global, options: options).run(kind: "lockcell", parameters: parameters.object)
    }
}

extension ProdConsTransport: ExpressibleByArgument {}
