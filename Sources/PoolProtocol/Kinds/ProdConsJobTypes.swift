/// The prodcons job's parameters as a job reports them (every default filled in).
public struct ProdConsParameters: Codable, Sendable, Equatable {
    public var producers: Int
    public var consumers: Int
    /// Items in all, split across the producers.
    public var items: Int
    /// The queue's depth in messages.
    public var capacity: Int
    public var payloadBytes: Int
    /// Items per message.
    public var batch: Int
    public var seed: Int
    /// Pauses after each put and get: a duration, or a range `low..high` drawn from.
    public var produceDelay: String
    public var consumeDelay: String
    /// One log line per put and get.
    public var trace: Bool

    public init(producers: Int, consumers: Int, items: Int, capacity: Int, payloadBytes: Int, batch: Int, seed: Int,
                produceDelay: String, consumeDelay: String, trace: Bool) {
        self.producers = producers
        self.consumers = consumers
        self.items = items
        self.capacity = capacity
        self.payloadBytes = payloadBytes
        self.batch = batch
        self.seed = seed
        self.produceDelay = produceDelay
        self.consumeDelay = consumeDelay
        self.trace = trace
    }
}

/// What the prodcons job's producers sent and its consumers received, checked by count and sum.
public struct ProdConsResult: JobResult {
    public static let kind = "prodcons"

    public var items: Int
    public var produced: Int
    public var consumed: Int
    public var producedSum: Int
    public var consumedSum: Int
    /// Every item produced and consumed, with equal sums.
    public var checksumOK: Bool
    public var durationSeconds: Double
    public var itemsPerSecond: Double
    /// Times a producer found the queue full, and a consumer found it empty.
    public var queueFull: Int
    public var queueEmpty: Int
    /// Items a dead consumer's replacement took from its ledger, and items a dead producer's
    /// replacement sent again.
    public var redelivered: Int
    public var resent: Int
    public var latencyMicros: ProdConsLatency
    public var producers: [ProdConsProducer]
    public var consumers: [ProdConsConsumer]
    /// Items of messages a dead producer left uncertain (sent or not) that the job ended before
    /// settling; absent when none.
    public var unsettled: Int?
    /// The queue's length as the daemon sampled it; absent when it could not open the queue.
    public var occupancy: ProdConsOccupancy?

    public init(items: Int, produced: Int, consumed: Int, producedSum: Int, consumedSum: Int, checksumOK: Bool,
                durationSeconds: Double, itemsPerSecond: Double, queueFull: Int, queueEmpty: Int, redelivered: Int,
                resent: Int, latencyMicros: ProdConsLatency, producers: [ProdConsProducer], consumers: [ProdConsConsumer],
                unsettled: Int? = nil, occupancy: ProdConsOccupancy? = nil) {
        self.items = items
        self.produced = produced
        self.consumed = consumed
        self.producedSum = producedSum
        self.consumedSum = consumedSum
        self.checksumOK = checksumOK
        self.durationSeconds = durationSeconds
        self.itemsPerSecond = itemsPerSecond
        self.queueFull = queueFull
        self.queueEmpty = queueEmpty
        self.redelivered = redelivered
        self.resent = resent
        self.latencyMicros = latencyMicros
        self.producers = producers
        self.consumers = consumers
        self.unsettled = unsettled
        self.occupancy = occupancy
    }
}

/// Enqueue-to-dequeue latency in microseconds: the percentiles are bucket bounds, the max exact.
public struct ProdConsLatency: Codable, Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    /// The percentiles' relative resolution (0.01: to 1%).
    public var percentileResolution: Double

    public init(p50: Double, p90: Double, p99: Double, max: Double, percentileResolution: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.percentileResolution = percentileResolution
    }
}

public struct ProdConsProducer: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var pid: Int
    public var produced: Int
    public var sum: Int
    public var foundFull: Int

    public init(participant: Int, slot: Int, pid: Int, produced: Int, sum: Int, foundFull: Int) {
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.produced = produced
        self.sum = sum
        self.foundFull = foundFull
    }
}

public struct ProdConsConsumer: Codable, Sendable, Equatable {
    public var participant: Int
    public var slot: Int
    public var pid: Int
    public var consumed: Int
    public var sum: Int
    public var foundEmpty: Int

    public init(participant: Int, slot: Int, pid: Int, consumed: Int, sum: Int, foundEmpty: Int) {
        self.participant = participant
        self.slot = slot
        self.pid = pid
        self.consumed = consumed
        self.sum = sum
        self.foundEmpty = foundEmpty
    }
}

/// The queue's length over the job, sampled by the daemon: at most 512 samples, the interval
/// doubling (neighbours averaged) each time they fill up.
public struct ProdConsOccupancy: Codable, Sendable, Equatable {
    public var intervalMillis: Double
    public var capacity: Int
    public var samples: [Double]

    public init(intervalMillis: Double, capacity: Int, samples: [Double]) {
        self.intervalMillis = intervalMillis
        self.capacity = capacity
        self.samples = samples
    }
}

extension ProdConsResult {
    public var summary: String { "\(checksumVerdict), \(consumed) items" }

    /// What the sums say. A job stopped early (cancelled, timed out, failed) has items that never
    /// got through; that is an incomplete run, not a checksum mismatch, unless the items that did
    /// get through disagree.
    public var checksumVerdict: String {
        if checksumOK { return "checksum OK" }
        if consumed < items && consumed <= produced {
            let pending = produced - consumed
            let agreement = pending == 0 ? (producedSum == consumedSum ? ", checksum OK for those" : ", checksum MISMATCH for those") : ""
            return "incomplete: \(consumed) of \(items) consumed, \(pending) produced but not consumed\(agreement)"
        }
        return "checksum MISMATCH"
    }
}
