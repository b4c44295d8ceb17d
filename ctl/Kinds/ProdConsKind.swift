import ArgumentParser
import Foundation
import PoolProtocol

enum ProdConsKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { ProdConsCommand.self }

    static func lines(_ result: ProdConsResult) -> [String] {
        var lines = [
            "  produced \(result.produced) items (sum \(result.producedSum)), consumed \(result.consumed) (sum \(result.consumedSum)): \(result.checksumVerdict)",
            "  \(Output.duration(result.durationSeconds)), \(Output.rate(result.itemsPerSecond)) items/s; queue found full \(result.queueFull) times, empty \(result.queueEmpty) times",
        ]
        if result.redelivered + result.resent > 0 {
            lines.append("  recovered from dead workers: \(result.redelivered) items redelivered from a consumer's ledger, \(result.resent) sent again for a producer")
        }
        let latency = result.latencyMicros
        let percentiles = [("p50", latency.p50), ("p90", latency.p90), ("p99", latency.p99)]
            .map { "\($0) \(String(format: "%.1f", $1))us" }.joined(separator: ", ")
        lines.append("  enqueue-to-dequeue latency: " + percentiles + String(format: " (to %g%%)", latency.percentileResolution * 100)
                     + String(format: ", max %.1fus (exact)", latency.max))
        if let occupancy = result.occupancy, !occupancy.samples.isEmpty {
            let capacity = Double(max(occupancy.capacity, 1))
            lines.append("  queue occupancy: " + sparkline(occupancy.samples.map { $0 / capacity }))
        }
        lines += result.producers.map { "  producer on slot \($0.slot): produced \($0.produced), sum \($0.sum)" }
        lines += result.consumers.map { "  consumer on slot \($0.slot): consumed \($0.consumed), sum \($0.sum)" }
        return lines
    }

    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String] {
        guard let depth = progress.queueDepth else { return [] }
        let capacity = (try? parameters.decode(ProdConsParameters.self)).map { "/\($0.capacity)" } ?? ""
        return ["queue \(depth)" + capacity]
    }

    /// Values in 0...1 as a line of block characters.
    static func sparkline(_ values: [Double]) -> String {
        let blocks = Array("▁▂▃▄▅▆▇█")
        let step = max(1, values.count / 60)
        return String(stride(from: 0, to: values.count, by: step).map { index in
            let level = values[index] * Double(blocks.count - 1) + 0.5
            return blocks[level.isFinite ? Int(min(max(level, 0), Double(blocks.count - 1))) : 0]
        })
    }
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
        try JobRunner(global: global, options: options).run(kind: ProdConsResult.kind, parameters: parameters.object)
    }
}

extension ProdConsTransport: ExpressibleByArgument {}
