import Atomics
import CPooldShim
import Logging
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The notebook's bounded producer/consumer queue, across processes: one POSIX message queue per
/// job, producers and consumers blocking in the kernel (never polling `q.empty()`), items checked by
/// sum, latency measured from enqueue to dequeue, occupancy sampled by the daemon. With `transport:
/// shm` the queue is a `SharedRing` at the end of the kind area instead (see ProdConsJob+Ring.swift).
struct ProdConsJob: JobKind {
    typealias Transport = ProdConsTransport

    let producers: Int
    let consumers: Int
    let items: Int
    let capacity: Int
    let payloadBytes: Int
    let batch: Int
    let seed: UInt64
    let produceDelay: ClosedRange<Int64>
    let consumeDelay: ClosedRange<Int64>
    let trace: Bool
    let transport: Transport

    static let code: UInt32 = 2
    var workers: Int { producers + consumers }
    var totalWork: Int { 2 * items }
    var messageSize: Int { Message.headerSize + batch * payloadBytes }

    /// A queue message: a `pool_prodcons_message_header`, then `count` items of `payloadBytes` (the
    /// value in the first 8). A message with no items is the end-of-stream sentinel.
    enum Message {
        typealias Header = pool_prodcons_message_header
        static let headerSize = MemoryLayout<Header>.size

        static func header(_ message: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Header> { message.layout(Header.self) }

        /// The value of item `index` of a message.
        static func item(_ message: UnsafeMutableRawPointer, _ index: Int, payloadBytes: Int) -> UnsafeMutablePointer<Int64> {
            (message + headerSize + index * payloadBytes).layout(Int64.self)
        }
    }

    /// The kind area's fixed part: parameters, the shared consumed hint and the trace's next entry.
    typealias Area = pool_prodcons_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    /// Where the parts sized by the job's parameters start, from the start of the kind area.
    enum Regions {
        /// Per participant, a `Stats` record.
        static var stats: Int { MemoryLayout<Area>.size }
        static func histograms(_ participants: Int) -> Int { stats + participants * MemoryLayout<Stats>.stride }
        /// Per participant, a copy of the message in flight: the ledger a replacement recovers from.
        static func ledgers(_ participants: Int, consumers: Int) -> Int {
            histograms(participants) + consumers * LatencyHistogram.byteSize
        }
        static func ledgerStride(messageSize: Int) -> Int {
            let line = Int(POOL_CACHE_LINE)
            return (messageSize + line - 1) / line * line
        }
        /// Per producer, `parkedSlots` messages that dead producers left uncertain (see `ParkedMessage`).
        static func parked(_ participants: Int, consumers: Int, messageSize: Int) -> Int {
            ledgers(participants, consumers: consumers) + participants * ledgerStride(messageSize: messageSize)
        }
        static func parkedStride(messageSize: Int) -> Int {
            MemoryLayout<pool_prodcons_parked>.size + ledgerStride(messageSize: messageSize)
        }
        /// A `pool_prodcons_trace_entry` per item produced and consumed, when the job traces.
        static func traceEntries(_ participants: Int, consumers: Int, messageSize: Int) -> Int {
            parked(participants, consumers: consumers, messageSize: messageSize)
                + (participants - consumers) * parkedSlots * parkedStride(messageSize: messageSize)
        }
        /// The ring of a job over `Transport.shm`, after the trace, on a cache line.
        static func ring(_ participants: Int, consumers: Int, messageSize: Int, tracedItems: Int) -> Int {
            let line = Int(POOL_CACHE_LINE)
            let end = traceEntries(participants, consumers: consumers, messageSize: messageSize)
                + 2 * tracedItems * MemoryLayout<pool_prodcons_trace_entry>.stride
            return (end + line - 1) / line * line
        }
    }

    /// The largest ring a job may ask for: past it, a typo in `capacity` or `batch` would fill /dev/shm.
    static let maxRingBytes = 1 << 30
    static let maxRingCapacity = 1 << 24

    /// A participant's record in the kind area. A producer's count and sum say what it has sent; a
    /// consumer's what it has committed. The `before` pair is written ahead of each message (a
    /// producer's intent, a consumer's state before the message), so that a replacement can tell
    /// whether the dead worker's message in flight was sent or consumed. Sums are always stored
    /// before counts, so a count that matches says its sum is current. `recovered` counts the
    /// items a consumer's replacement took from the ledger (redelivered) or a producer's
    /// replacement sent again because the original was lost with its worker; `receives` a
    /// consumer's returns from the queue (with a message or not): settling waits for every
    /// consumer's next one, so that no message is between the kernel and a ledger.
    typealias Stats = pool_prodcons_stats

    static func stats(in area: UnsafeMutableRawPointer, participant: Int) -> UnsafeMutablePointer<Stats> {
        (area + Regions.stats).layout(Stats.self) + participant
    }

    static func traceEntries(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int,
                             messageSize: Int) -> UnsafeMutablePointer<pool_prodcons_trace_entry> {
        (area + Regions.traceEntries(participants, consumers: consumers, messageSize: messageSize)).layout(pool_prodcons_trace_entry.self)
    }

    static func histogram(in area: UnsafeMutableRawPointer, participants: Int, consumer: Int) -> LatencyHistogram {
        LatencyHistogram(at: area + Regions.histograms(participants) + consumer * LatencyHistogram.byteSize)
    }

    /// Where one participant's worker draws its items. A replacement draws other values than its
    /// predecessor: the checksum compares what was produced with what was consumed, not with a
    /// fixed sequence.
    static func itemSource(seed: UInt64, context: ParticipantContext) -> SplitMix64 {
        SplitMix64(seed: seed &+ UInt64(context.participant) &* 0x9E37_79B9 &+ UInt64(context.attempt) &* 0xBF58_476D)
    }

    /// How many uncertain messages (a producer died between a send and recording it) one producer
    /// can have parked at once: each needs that unlikely death, and they are settled at the end.
    static let parkedSlots = Int(POOL_PRODCONS_PARKED_SLOTS)

    /// A parking place's state.
    enum ParkedState {
        static let free: Int64 = 0
        /// Sent or not: settled at the end of the job.
        static let uncertain: Int64 = 1
        /// Settled: it reached the queue (or was sent again) and counts as produced.
        static let arrived: Int64 = 2
    }

    /// A parking place in the kind area: a `pool_prodcons_parked` (the state, the message's item
    /// count and sum), then the message.
    struct ParkedMessage {
        let header: UnsafeMutablePointer<pool_prodcons_parked>
        var state: UnsafeAtomic<Int64> { header.atomic(\.state) }
        var items: Int64 { header.pointee.items }
        var sum: Int64 { header.pointee.sum }
        var message: UnsafeMutableRawPointer { header.end }
    }

    static func parked(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int, messageSize: Int,
                       producer: Int, slot: Int) -> ParkedMessage {
        let place = area + Regions.parked(participants, consumers: consumers, messageSize: messageSize)
            + (producer * parkedSlots + slot) * Regions.parkedStride(messageSize: messageSize)
        return ParkedMessage(header: place.layout(pool_prodcons_parked.self))
    }

    /// A producer's share of the items.
    static func share(producer: Int, producers: Int, items: Int) -> Int {
        items / producers + (producer < items % producers ? 1 : 0)
    }

    /// What a producer's records say: sent and recorded, the send in flight, the parked messages.
    struct ProducerAccount: Equatable {
        struct Parked: Equatable {
            let slot: Int
            let state: Int64
            let items: Int64
            let sum: Int64
        }

        let share: Int64
        let count: Int64
        let sum: Int64
        let intentCount: Int64
        let parked: [Parked]

        var arrivedItems: Int64 { parked.filter { $0.state == ParkedState.arrived }.reduce(0) { $0 + $1.items } }
        var arrivedSum: Int64 { parked.filter { $0.state == ParkedState.arrived }.reduce(0) { $0 + $1.sum } }
        var uncertainItems: Int64 { parked.filter { $0.state == ParkedState.uncertain }.reduce(0) { $0 + $1.items } }
        /// Produced for certain.
        var settled: Int64 { count + arrivedItems }
        /// Produced, counting the uncertain messages as sent.
        var planned: Int64 { settled + uncertainItems }
        /// Nothing in flight and nothing left to send but the parked messages.
        var isQuiet: Bool { intentCount == count && planned == share }
    }

    static func account(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int, messageSize: Int,
                        producer: Int, items: Int) -> ProducerAccount {
        let stats = Self.stats(in: area, participant: producer)
        let count = stats.atomic(\.count).load(ordering: .acquiring)
        let parked = (0..<parkedSlots).compactMap { slot -> ProducerAccount.Parked? in
            let place = Self.parked(in: area, participants: participants, consumers: consumers, messageSize: messageSize,
                                    producer: producer, slot: slot)
            let state = place.state.load(ordering: .acquiring)
            return state == ParkedState.free ? nil : .init(slot: slot, state: state, items: place.items, sum: place.sum)
        }
        return ProducerAccount(share: Int64(share(producer: producer, producers: participants - consumers, items: items)),
                               count: count, sum: stats.atomic(\.sum).load(ordering: .relaxed),
                               intentCount: stats.atomic(\.countBefore).load(ordering: .acquiring), parked: parked)
    }

    /// A parked message by producer and parking place.
    struct ParkedKey: Hashable {
        let producer: Int
        let slot: Int
    }

    /// What producers settling their parked messages decide from.
    struct SettlementSnapshot: Equatable {
        let queueDepth: Int
        let consumersHold: Bool
        let committedCount: Int64
        let committedSum: Int64
        let producers: [ProducerAccount]

        var isQuiet: Bool { queueDepth == 0 && !consumersHold && producers.allSatisfy(\.isQuiet) }

        private var uncertain: [(key: ParkedKey, items: Int64, sum: Int64)] {
            producers.enumerated().flatMap { producer, account in
                account.parked.filter { $0.state == ParkedState.uncertain }
                    .map { (key: ParkedKey(producer: producer, slot: $0.slot), items: $0.items, sum: $0.sum) }
            }
        }

        var uncertainCount: Int { uncertain.count }

        /// The uncertain messages that never arrived: those whose items and sum make up exactly
        /// what all producers' records (counting every uncertain message as sent) have beyond
        /// the consumers' commits. When two choices would fit (equal counts and sums), the first
        /// in producer order is taken, the same by every producer; either makes the account exact.
        func lostMessages() -> Set<ParkedKey>? {
            let entries = uncertain
            guard entries.count <= 16 else { return nil }
            let missingItems = producers.reduce(0) { $0 + $1.planned } - committedCount
            let missingSum = producers.reduce(0) { $0 + $1.sum + $1.arrivedSum + $1.parked.filter { $0.state == ParkedState.uncertain }.reduce(0) { $0 + $1.sum } } - committedSum
            for mask in 0..<(1 << entries.count) {
                let chosen = entries.indices.filter { mask & (1 << $0) != 0 }
                guard chosen.reduce(0, { $0 + entries[$1].items }) == missingItems,
                      chosen.reduce(0, { $0 + entries[$1].sum }) == missingSum else { continue }
                return Set(chosen.map { entries[$0].key })
            }
            return nil
        }
    }

    /// The first field of a ledger message that holds no message: the kernel's copy of a received
    /// message overwrites it with the producer's index, which marks the message in flight.
    static let emptyLedgerMark = UInt32.max

    static let maxTracedItems = 100_000

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> ProdConsJob {
        var reader = try ParameterReader(parameters)
        let producers = try reader.int("producers", default: 1, in: 1...JobLimits.maxWorkerCount)
        let consumers = try reader.int("consumers", default: 1, in: 1...JobLimits.maxWorkerCount)
        let items = try reader.int("items", default: 10, in: 1...1_000_000_000)
        let transport = try reader.choice("transport", default: Transport.mq)
        let capacity = try reader.int("capacity", default: 10, in: 1...(transport == .shm ? maxRingCapacity : 65536))
        let payloadBytes = try reader.int("payloadBytes", default: 8, in: 8...1_048_576)
        let batch = try reader.int("batch", default: 1, in: 1...65536)
        let seed = try reader.int("seed", default: 1, in: 0...Int.max)
        // The notebook sleeps random.random() seconds around each put and get; a large run has no delay.
        let defaultDelay: ClosedRange<Int64> = items <= 100 ? 0...1_000_000_000 : 0...0
        let produceDelay = try reader.durationRange("produceDelay", default: defaultDelay, max: 60_000_000_000)
        let consumeDelay = try reader.durationRange("consumeDelay", default: defaultDelay, max: 60_000_000_000)
        let trace = try reader.bool("trace", default: false)
        try reader.finish(kind: Self.name)

        if producers + consumers > limits.poolSize {
            throw limits.poolTooSmall(requested: producers + consumers)
        }
        if trace && items > maxTracedItems {
            throw PoolError.invalidParameter("trace", "traces at most \(maxTracedItems) items; run without trace for more")
        }
        let job = ProdConsJob(producers: producers, consumers: consumers, items: items, capacity: capacity,
                              payloadBytes: payloadBytes, batch: batch, seed: UInt64(seed), produceDelay: produceDelay,
                              consumeDelay: consumeDelay, trace: trace, transport: transport)
        if transport == .shm {
            let bytes = job.ringBytes
            guard bytes <= maxRingBytes else {
                throw PoolError.invalidParameter(batch > 1 ? "batch" : "capacity", "a ring of \(capacity) slots of \(batch) x \(payloadBytes)-byte items is \(bytes) bytes, above the \(maxRingBytes) a job's ring may take; ask for a smaller capacity, batch or payload")
            }
            return job
        }
        let maxDepth = SystemLimits.messageQueueMaxDepth
        guard capacity <= maxDepth else {
            throw PoolError.invalidParameter("capacity", "\(capacity) is above the system's limit on queue depth, /proc/sys/fs/mqueue/msg_max = \(maxDepth); raise it (sysctl fs.mqueue.msg_max=\(capacity)) or ask for at most \(maxDepth)")
        }
        let messageSize = Message.headerSize + batch * payloadBytes
        let maxSize = SystemLimits.messageQueueMaxMessageSize
        guard messageSize <= maxSize else {
            throw PoolError.invalidParameter(batch > 1 ? "batch" : "payloadBytes", "a message of \(batch) x \(payloadBytes)-byte items plus a \(Message.headerSize)-byte header is \(messageSize) bytes, above /proc/sys/fs/mqueue/msgsize_max = \(maxSize); send fewer or smaller items per message, or raise it (sysctl fs.mqueue.msgsize_max=\(messageSize))")
        }
        let cost = SystemLimits.messageQueueCost(depth: capacity, messageSize: messageSize)
        let budget = SystemLimits.messageQueueByteLimit
        guard cost <= budget else {
            throw PoolError.resourceLimit("a queue of \(capacity) x \(messageSize)-byte messages needs about \(cost) bytes but RLIMIT_MSGQUEUE allows \(budget) for this user (ulimit -q; LimitMSGQUEUE= under systemd)")
        }
        return job
    }

    var parameters: JSONValue {
        func range(_ range: ClosedRange<Int64>) -> String {
            range.lowerBound == range.upperBound ? DurationText.format(range.lowerBound)
                : DurationText.format(range.lowerBound) + ".." + DurationText.format(range.upperBound)
        }
        return JSONValue(reporting: ProdConsParameters(
            producers: producers, consumers: consumers, items: items, capacity: capacity, payloadBytes: payloadBytes,
            batch: batch, seed: Int(seed), produceDelay: range(produceDelay), consumeDelay: range(consumeDelay), trace: trace,
            transport: transport))
    }

    static func queueName(segmentName: String) -> String { segmentName + ".queue" }

    static func ledger(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int, messageSize: Int, index: Int) -> UnsafeMutableRawPointer {
        area + Regions.ledgers(participants, consumers: consumers) + index * Regions.ledgerStride(messageSize: messageSize)
    }

    /// A consumer or producer whose worker dies is taken over by a replacement: the ledger in the
    /// segment says what the dead one had in flight, so every item is still consumed exactly once.
    var resumesAfterWorkerDeath: Bool { true }

    var kindAreaSize: Int {
        if transport == .shm { return ringOffset + ringBytes }
        let traceSize = trace ? 2 * items * MemoryLayout<pool_prodcons_trace_entry>.stride : 0
        return Regions.traceEntries(workers, consumers: consumers, messageSize: messageSize) + traceSize
    }

    var ringOffset: Int { Regions.ring(workers, consumers: consumers, messageSize: messageSize, tracedItems: trace ? items : 0) }
    var ringSlotBytes: Int { SharedRing.slotStride(itemBytes: batch * payloadBytes) }
    var ringBytes: Int { SharedRing.byteSize(capacity: capacity, slotBytes: ringSlotBytes, owners: workers) }

    var messageQueue: (depth: Int, messageSize: Int)? { transport == .mq ? (capacity, messageSize) : nil }

    /// The job's ring, in the segment of a job over `Transport.shm`.
    static func ring(in segment: JobSegment) throws(IPCError) -> SharedRing {
        let area = Self.area(of: segment).pointee
        let messageSize = Message.headerSize + Int(area.batch * area.payloadBytes)
        let offset = Regions.ring(segment.participants, consumers: segment.participants - Int(area.producers),
                                  messageSize: messageSize, tracedItems: area.trace != 0 ? Int(area.items) : 0)
        let available = segment.segment.size - segment.kindAreaOffset - offset
        return try SharedRing.attach(at: segment.kindArea + offset, available: available)
    }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = segment.kindArea
        let fixed = Self.area(of: segment)
        fixed.pointee.items = Int64(items)
        fixed.pointee.capacity = Int64(capacity)
        fixed.pointee.payloadBytes = Int64(payloadBytes)
        fixed.pointee.batch = Int64(batch)
        fixed.pointee.producers = Int64(producers)
        fixed.pointee.trace = trace ? 1 : 0
        fixed.pointee.transport = transport == .shm ? 1 : 0
        fixed.pointee.seed = seed
        for index in 0..<workers {
            Message.header(Self.ledger(in: area, participants: workers, consumers: consumers, messageSize: messageSize, index: index))
                .pointee.producer = Self.emptyLedgerMark
        }
        fixed.pointee.produceLow = produceDelay.lowerBound
        fixed.pointee.produceHigh = produceDelay.upperBound
        fixed.pointee.consumeLow = consumeDelay.lowerBound
        fixed.pointee.consumeHigh = consumeDelay.upperBound
        if transport == .shm {
            _ = SharedRing.create(at: area + ringOffset, capacity: capacity, slotBytes: ringSlotBytes, owners: workers)
            return
        }
        let queue = try MessageQueue.create(name: Self.queueName(segmentName: segment.segment.name), depth: capacity, messageSize: messageSize)
        queue.close()
    }

    func removeResources(segmentName: String) {
        if transport == .mq { MessageQueue.unlink(name: Self.queueName(segmentName: segmentName)) }
    }

    func makeMonitor(segment: JobSegment) -> (any JobMonitor)? {
        switch transport {
        case .mq:
            guard let queue = try? MessageQueue.open(name: Self.queueName(segmentName: segment.segment.name), nonBlocking: true) else {
                return nil
            }
            return OccupancySampler(.queue(queue))
        case .shm:
            guard let ring = try? Self.ring(in: segment) else { return nil }
            return OccupancySampler(.ring(ring, segment))
        }
    }

    /// Samples the queue's length while the job runs, keeping at most `limit` samples: when full,
    /// neighbours are averaged and the interval doubles, so a long run keeps its whole shape.
    final class OccupancySampler: JobMonitor {
        enum Source {
            /// Open until the job finishes: an unlinked queue still open counts against queues_max.
            case queue(MessageQueue)
            /// The segment keeps the ring mapped.
            case ring(SharedRing, JobSegment)
        }

        private var source: Source?
        private(set) var samples: [Double] = []
        private(set) var interval: Int64 = 10_000_000
        let limit = 512
        var initialDelay: Duration { .nanoseconds(0) }

        init(_ source: Source) {
            self.source = source
        }

        deinit {
            close()
        }

        func close() {
            if case .queue(let queue)? = source { queue.close() }
            source = nil
        }

        /// The queue's length now: messages in the queue, or slots published and not yet taken.
        var currentDepth: Int? {
            switch source {
            case .queue(let queue)?: return queue.currentDepth
            case .ring(let ring, _)?: return ring.length
            case nil: return nil
            }
        }

        func tick() -> Duration? {
            guard let depth = currentDepth else { return nil }
            samples.append(Double(depth))
            if samples.count >= limit {
                samples = stride(from: 0, to: samples.count - 1, by: 2).map { (samples[$0] + samples[$0 + 1]) / 2 }
                interval *= 2
            }
            return .nanoseconds(interval)
        }
    }

    /// The queue's depth now, from the sampler's descriptor (mq_getattr) or ring.
    func addLiveFigures(to progress: inout JobProgress, segment: JobSegment, monitor: (any JobMonitor)?) {
        if let depth = (monitor as? OccupancySampler)?.currentDepth { progress.queueDepth = depth }
    }

    func logLineCount(segment: JobSegment) -> Int {
        guard trace else { return 0 }
        return min(Int(Self.area(of: segment).atomic(\.traceNext).load(ordering: .acquiring)), 2 * items)
    }

    func logLines(segment: JobSegment, from start: Int) -> [String] {
        let written = logLineCount(segment: segment)
        guard start < written else { return [] }
        let entries = Self.traceEntries(in: segment.kindArea, participants: workers, consumers: consumers, messageSize: messageSize)
        var lines: [String] = []
        lines.reserveCapacity(written - start)
        for index in start..<written {
            let entry = entries[index]
            guard entry.time != 0 else { break }  // not yet complete
            let verb = entry.kind == 1 ? "Produced" : "Consumed"
            let value = entry.value
            let length = entry.queueLength
            lines.append("\(verb) \(value) (queue length = \(length))")
        }
        return lines
    }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> ProdConsResult {
        let area = segment.kindArea
        var producerEntries: [ProdConsProducer] = [], consumerEntries: [ProdConsConsumer] = []
        var produced = 0, consumed = 0, producedSum = 0, consumedSum = 0, full = 0, empty = 0, redelivered = 0, resent = 0
        var first = Int64.max, last = Int64.min
        var unsettled = 0
        for index in 0..<workers {
            let stats = Self.stats(in: area, participant: index).pointee
            var count = Int(stats.count)
            var sum = Int(stats.sum)
            if index < producers {
                // Parked messages count once settled; a job that ended before says how many were not.
                let account = Self.account(in: area, participants: workers, consumers: consumers, messageSize: messageSize,
                                           producer: index, items: items)
                count += Int(account.arrivedItems)
                sum += Int(account.arrivedSum)
                unsettled += Int(account.uncertainItems)
            }
            let waits = Int(stats.waits)
            let recovered = Int(stats.recovered)
            let participant = segment.participant(index)
            let started = participant.startedNanos.load(ordering: .relaxed)
            let finished = participant.finishedNanos.load(ordering: .relaxed)
            if started > 0 { first = min(first, started) }
            if finished > 0 { last = max(last, finished) }
            let (slot, pid) = (Int(participant.slot.load(ordering: .relaxed)), Int(participant.pid.load(ordering: .relaxed)))
            if index < producers {
                produced += count; producedSum += sum; full += waits; resent += recovered
                producerEntries.append(ProdConsProducer(participant: index, slot: slot, pid: pid, produced: count, sum: sum, foundFull: waits))
            } else {
                consumed += count; consumedSum += sum; empty += waits; redelivered += recovered
                consumerEntries.append(ProdConsConsumer(participant: index, slot: slot, pid: pid, consumed: count, sum: sum, foundEmpty: waits))
            }
        }
        let histograms = (0..<consumers).map { Self.histogram(in: area, participants: workers, consumer: $0) }
        let latency = LatencyHistogram.summary(histograms, percentiles: [50, 90, 99])
        let duration = last > first ? Double(last - first) / 1e9 : 0
        return ProdConsResult(
            items: items, produced: produced, consumed: consumed, producedSum: producedSum, consumedSum: consumedSum,
            checksumOK: produced == items && consumed == items && producedSum == consumedSum,
            durationSeconds: duration, itemsPerSecond: duration > 0 ? Double(consumed) / duration : 0,
            queueFull: full, queueEmpty: empty, redelivered: redelivered, resent: resent,
            // The percentiles are bucket bounds, the max exact.
            latencyMicros: ProdConsLatency(p50: Double(latency.values[0]) / 1000, p90: Double(latency.values[1]) / 1000,
                                           p99: Double(latency.values[2]) / 1000, max: Double(latency.max) / 1000,
                                           percentileResolution: LatencyHistogram.resolution),
            producers: producerEntries, consumers: consumerEntries,
            unsettled: unsettled > 0 ? unsettled : nil,
            occupancy: (monitor as? OccupancySampler).map {
                ProdConsOccupancy(intervalMillis: Double($0.interval) / 1e6, capacity: capacity, samples: $0.samples)
            })
    }
}
