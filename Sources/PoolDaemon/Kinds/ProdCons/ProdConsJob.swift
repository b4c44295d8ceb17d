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
struct ProdConsJob: JobPlan {
    /// Where the items travel.
    enum Transport: String, CaseIterable {
        /// A POSIX message queue of `capacity` messages: the notebook's queue, a system call per message.
        case mq
        /// A ring of `capacity` slots in the job's segment: no system call unless a side sleeps.
        case shm
    }

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

    var kind: JobKindCode { .prodcons }
    var workers: Int { producers + consumers }
    var totalWork: Int { 2 * items }
    var messageSize: Int { Message.headerSize + batch * payloadBytes }

    /// A queue message: a header, then `count` items of `payloadBytes` (the value in the first 8).
    /// A message with no items is the end-of-stream sentinel.
    enum Message {
        static let headerSize = 16   // producer UInt32, count UInt32, enqueued Int64
    }

    enum Area {
        static let items = 0, capacity = 8, payloadBytes = 16, batch = 24, seed = 32, producers = 40, trace = 48
        /// 1 when the queue is the ring (`Transport.shm`) at `ring(...)`.
        static let transport = 56
        static let produceLow = 64, produceHigh = 72, consumeLow = 80, consumeHigh = 88
        static let consumed = 128        // Int64, atomic: items consumed by all, as reported (a hint, see `committedTotal`)
        static let traceNext = 192       // Int64, atomic: next trace entry
        static let stats = 256           // per participant, see `Stats`
        static let statsSize = 64
        static func histograms(_ participants: Int) -> Int { stats + participants * statsSize }
        /// Per participant, a copy of the message in flight: the ledger a replacement recovers from.
        static func ledgers(_ participants: Int, consumers: Int) -> Int {
            histograms(participants) + consumers * LatencyHistogram.byteSize
        }
        static func ledgerStride(messageSize: Int) -> Int { (messageSize + 63) & ~63 }
        /// Per producer, `parkedSlots` messages that dead producers left uncertain (see `ParkedMessage`).
        static func parked(_ participants: Int, consumers: Int, messageSize: Int) -> Int {
            ledgers(participants, consumers: consumers) + participants * ledgerStride(messageSize: messageSize)
        }
        static func parkedStride(messageSize: Int) -> Int { ParkedMessage.headerSize + ledgerStride(messageSize: messageSize) }
        static func traceEntries(_ participants: Int, consumers: Int, messageSize: Int) -> Int {
            parked(participants, consumers: consumers, messageSize: messageSize)
                + (participants - consumers) * parkedSlots * parkedStride(messageSize: messageSize)
        }
        static let traceEntrySize = 32   // kind UInt32, participant UInt32, value, queue length, time (Int64)
        /// The ring, after the trace, on a cache line.
        static func ring(_ participants: Int, consumers: Int, messageSize: Int, tracedItems: Int) -> Int {
            (traceEntries(participants, consumers: consumers, messageSize: messageSize) + 2 * tracedItems * traceEntrySize + 63) & ~63
        }
    }

    /// The largest ring a job may ask for: past it, a typo in `capacity` or `batch` would fill /dev/shm.
    static let maxRingBytes = 1 << 30
    static let maxRingCapacity = 1 << 24

    /// A participant's record in the kind area (Int64 each). A producer's count and sum say what it
    /// has sent; a consumer's what it has committed. The `before` pair is written ahead of each
    /// message (a producer's intent, a consumer's state before the message), so that a replacement
    /// can tell whether the dead worker's message in flight was sent or consumed. Sums are always
    /// stored before counts, so a count that matches says its sum is current.
    enum Stats {
        static let count = 0, sum = 8, waits = 16, countBefore = 24, sumBefore = 32
        /// Items a consumer's replacement took from the ledger (redelivered) or a producer's
        /// replacement sent again because the original was lost with its worker.
        static let recovered = 40
        /// A consumer's count of returns from the queue (with a message or not): settling waits
        /// for every consumer's next one, so that no message is between the kernel and a ledger.
        static let receives = 48
    }

    /// How many uncertain messages (a producer died between a send and recording it) one producer
    /// can have parked at once: each needs that unlikely death, and they are settled at the end.
    static let parkedSlots = 4

    /// A parking place's state.
    enum ParkedState {
        static let free: Int64 = 0
        /// Sent or not: settled at the end of the job.
        static let uncertain: Int64 = 1
        /// Settled: it reached the queue (or was sent again) and counts as produced.
        static let arrived: Int64 = 2
    }

    /// A parking place in the kind area: the state, the message's item count and sum, the message.
    struct ParkedMessage {
        static let headerSize = 64
        static let itemsOffset = 8, sumOffset = 16
        let base: UnsafeMutableRawPointer
        var state: UnsafeAtomic<Int64> { ProdConsJob.atomic(base) }
        var items: Int64 { base.load(fromByteOffset: Self.itemsOffset, as: Int64.self) }
        var sum: Int64 { base.load(fromByteOffset: Self.sumOffset, as: Int64.self) }
        var message: UnsafeMutableRawPointer { base + Self.headerSize }
    }

    static func parked(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int, messageSize: Int,
                       producer: Int, slot: Int) -> ParkedMessage {
        ParkedMessage(base: area + Area.parked(participants, consumers: consumers, messageSize: messageSize)
                      + (producer * parkedSlots + slot) * Area.parkedStride(messageSize: messageSize))
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
        let stats = area + Area.stats + producer * Area.statsSize
        let count = atomic(stats + Stats.count).load(ordering: .acquiring)
        let parked = (0..<parkedSlots).compactMap { slot -> ProducerAccount.Parked? in
            let place = Self.parked(in: area, participants: participants, consumers: consumers, messageSize: messageSize,
                                    producer: producer, slot: slot)
            let state = place.state.load(ordering: .acquiring)
            return state == ParkedState.free ? nil : .init(slot: slot, state: state, items: place.items, sum: place.sum)
        }
        return ProducerAccount(share: Int64(share(producer: producer, producers: participants - consumers, items: items)),
                               count: count, sum: atomic(stats + Stats.sum).load(ordering: .relaxed),
                               intentCount: atomic(stats + Stats.countBefore).load(ordering: .acquiring), parked: parked)
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
        try reader.finish(kind: "prodcons")

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
        func range(_ range: ClosedRange<Int64>) -> JSONValue {
            .string(range.lowerBound == range.upperBound ? DurationText.format(range.lowerBound)
                    : DurationText.format(range.lowerBound) + ".." + DurationText.format(range.upperBound))
        }
        return .object([
            "producers": .number(Double(producers)), "consumers": .number(Double(consumers)),
            "items": .number(Double(items)), "capacity": .number(Double(capacity)),
            "payloadBytes": .number(Double(payloadBytes)), "batch": .number(Double(batch)),
            "seed": .number(Double(seed)), "produceDelay": range(produceDelay), "consumeDelay": range(consumeDelay),
            "trace": .bool(trace), "transport": .string(transport.rawValue),
        ])
    }

    static func queueName(segmentName: String) -> String { segmentName + ".queue" }

    static func ledger(in area: UnsafeMutableRawPointer, participants: Int, consumers: Int, messageSize: Int, index: Int) -> UnsafeMutableRawPointer {
        area + Area.ledgers(participants, consumers: consumers) + index * Area.ledgerStride(messageSize: messageSize)
    }

    /// A consumer or producer whose worker dies is taken over by a replacement: the ledger in the
    /// segment says what the dead one had in flight, so every item is still consumed exactly once.
    var resumesAfterWorkerDeath: Bool { true }

    var kindAreaSize: Int {
        let traceSize = trace ? 2 * items * Area.traceEntrySize : 0
        let queueEnd = Area.traceEntries(workers, consumers: consumers, messageSize: messageSize) + traceSize
        return transport == .shm ? ringOffset + ringBytes : queueEnd
    }

    var ringOffset: Int { Area.ring(workers, consumers: consumers, messageSize: messageSize, tracedItems: trace ? items : 0) }
    var ringSlotBytes: Int { SharedRing.slotStride(itemBytes: batch * payloadBytes) }
    var ringBytes: Int { SharedRing.byteSize(capacity: capacity, slotBytes: ringSlotBytes, owners: workers) }

    var messageQueue: (depth: Int, messageSize: Int)? { transport == .mq ? (capacity, messageSize) : nil }

    /// The job's ring, in a segment of a job that has one.
    static func ring(in segment: JobSegment) throws(IPCError) -> SharedRing {
        let area = segment.kindArea
        let producers = Int(area.load(fromByteOffset: Area.producers, as: Int64.self))
        let items = Int(area.load(fromByteOffset: Area.items, as: Int64.self))
        let traced = area.load(fromByteOffset: Area.trace, as: Int64.self) != 0 ? items : 0
        let messageSize = Message.headerSize + Int(area.load(fromByteOffset: Area.batch, as: Int64.self) * area.load(fromByteOffset: Area.payloadBytes, as: Int64.self))
        let offset = Area.ring(segment.participants, consumers: segment.participants - producers, messageSize: messageSize, tracedItems: traced)
        let available = segment.segment.size - segment.kindAreaOffset - offset
        return try SharedRing.attach(at: area + offset, available: available)
    }

    func createSegment(name: String) throws(IPCError) -> JobSegment {
        let segment = try JobSegment.create(name: name, kind: kind.rawValue, participants: workers, kindAreaSize: kindAreaSize)
        let area = segment.kindArea
        for (offset, value) in [(Area.items, items), (Area.capacity, capacity), (Area.payloadBytes, payloadBytes),
                                (Area.batch, batch), (Area.producers, producers), (Area.trace, trace ? 1 : 0),
                                (Area.transport, transport == .shm ? 1 : 0)] {
            area.storeBytes(of: Int64(value), toByteOffset: offset, as: Int64.self)
        }
        area.storeBytes(of: seed, toByteOffset: Area.seed, as: UInt64.self)
        for index in 0..<workers {
            Self.ledger(in: area, participants: workers, consumers: consumers, messageSize: messageSize, index: index)
                .storeBytes(of: Self.emptyLedgerMark, toByteOffset: 0, as: UInt32.self)
        }
        for (offset, value) in [(Area.produceLow, produceDelay.lowerBound), (Area.produceHigh, produceDelay.upperBound),
                                (Area.consumeLow, consumeDelay.lowerBound), (Area.consumeHigh, consumeDelay.upperBound)] {
            area.storeBytes(of: value, toByteOffset: offset, as: Int64.self)
        }
        if transport == .shm {
            _ = SharedRing.create(at: area + ringOffset, capacity: capacity, slotBytes: ringSlotBytes, owners: workers)
            return segment
        }
        do {
            let queue = try MessageQueue.create(name: Self.queueName(segmentName: name), depth: capacity, messageSize: messageSize)
            queue.close()
        } catch {
            SharedSegment.unlink(name: name)
            throw error
        }
        return segment
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
        return min(Int(Self.atomic(segment.kindArea + Area.traceNext).load(ordering: .acquiring)), 2 * items)
    }

    func logLines(segment: JobSegment, from start: Int) -> [String] {
        let written = logLineCount(segment: segment)
        guard start < written else { return [] }
        let base = segment.kindArea + Area.traceEntries(workers, consumers: consumers, messageSize: messageSize)
        var lines: [String] = []
        lines.reserveCapacity(written - start)
        for index in start..<written {
            let entry = base + index * Area.traceEntrySize
            guard entry.load(fromByteOffset: 24, as: Int64.self) != 0 else { break }  // not yet complete
            let verb = entry.load(fromByteOffset: 0, as: UInt32.self) == 1 ? "Produced" : "Consumed"
            let value = entry.load(fromByteOffset: 8, as: Int64.self)
            let length = entry.load(fromByteOffset: 16, as: Int64.self)
            lines.append("\(verb) \(value) (queue length = \(length))")
        }
        return lines
    }

    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> JSONValue {
        let area = segment.kindArea
        var producerEntries: [JSONValue] = [], consumerEntries: [JSONValue] = []
        var produced = 0, consumed = 0, producedSum = 0, consumedSum = 0, full = 0, empty = 0, redelivered = 0, resent = 0
        var first = Int64.max, last = Int64.min
        var unsettled = 0
        for index in 0..<workers {
            let stats = area + Area.stats + index * Area.statsSize
            var count = Int(stats.load(fromByteOffset: 0, as: Int64.self))
            var sum = Int(stats.load(fromByteOffset: 8, as: Int64.self))
            if index < producers {
                // Parked messages count once settled; a job that ended before says how many were not.
                let account = Self.account(in: area, participants: workers, consumers: consumers, messageSize: messageSize,
                                           producer: index, items: items)
                count += Int(account.arrivedItems)
                sum += Int(account.arrivedSum)
                unsettled += Int(account.uncertainItems)
            }
            let waits = Int(stats.load(fromByteOffset: 16, as: Int64.self))
            let recovered = Int(stats.load(fromByteOffset: Stats.recovered, as: Int64.self))
            let participant = segment.participant(index)
            let started = participant.startedNanos.load(ordering: .relaxed)
            let finished = participant.finishedNanos.load(ordering: .relaxed)
            if started > 0 { first = min(first, started) }
            if finished > 0 { last = max(last, finished) }
            var entry: [String: JSONValue] = [
                "participant": .number(Double(index)),
                "slot": .number(Double(participant.slot.load(ordering: .relaxed))),
                "pid": .number(Double(participant.pid.load(ordering: .relaxed))),
                "sum": .number(Double(sum)),
            ]
            if index < producers {
                produced += count; producedSum += sum; full += waits; resent += recovered
                entry["produced"] = .number(Double(count))
                entry["foundFull"] = .number(Double(waits))
                producerEntries.append(.object(entry))
            } else {
                consumed += count; consumedSum += sum; empty += waits; redelivered += recovered
                entry["consumed"] = .number(Double(count))
                entry["foundEmpty"] = .number(Double(waits))
                consumerEntries.append(.object(entry))
            }
        }
        let histograms = (0..<consumers).map { LatencyHistogram(at: area + Area.histograms(workers) + $0 * LatencyHistogram.byteSize) }
        let latency = LatencyHistogram.summary(histograms, percentiles: [50, 90, 99])
        let duration = last > first ? Double(last - first) / 1e9 : 0
        var result: [String: JSONValue] = [
            "items": .number(Double(items)),
            "produced": .number(Double(produced)), "consumed": .number(Double(consumed)),
            "producedSum": .number(Double(producedSum)), "consumedSum": .number(Double(consumedSum)),
            "checksumOK": .bool(produced == items && consumed == items && producedSum == consumedSum),
            "durationSeconds": .number(duration),
            "itemsPerSecond": .number(duration > 0 ? Double(consumed) / duration : 0),
            "queueFull": .number(Double(full)), "queueEmpty": .number(Double(empty)),
            "redelivered": .number(Double(redelivered)), "resent": .number(Double(resent)),
            "latencyMicros": .object([
                "p50": .number(Double(latency.values[0]) / 1000), "p90": .number(Double(latency.values[1]) / 1000),
                "p99": .number(Double(latency.values[2]) / 1000), "max": .number(Double(latency.max) / 1000),
                // The percentiles are bucket bounds, the max exact.
                "percentileResolution": .number(LatencyHistogram.resolution),
            ]),
            "producers": .array(producerEntries), "consumers": .array(consumerEntries),
        ]
        if unsettled > 0 { result["unsettled"] = .number(Double(unsettled)) }
        if let sampler = monitor as? OccupancySampler {
            result["occupancy"] = .object([
                "intervalMillis": .number(Double(sampler.interval) / 1e6),
                "capacity": .number(Double(capacity)),
                "samples": .array(sampler.samples.map { .number($0) }),
            ])
        }
        return .object(result)
    }

    /// Writes one trace entry (and its log line) for a put (`kind` 1) or a get (2).
    static func traceLine(kind: UInt32, participant: Int, value: Int64, queueLength: Int64, area: UnsafeMutableRawPointer,
                          entries: Int, items: Int, logger: Logger) {
        let next = atomic(area + Area.traceNext)
        let index = Int(next.loadThenWrappingIncrement(ordering: .relaxed))
        guard index < 2 * items else { return }
        let entry = area + entries + index * Area.traceEntrySize
        entry.storeBytes(of: kind, toByteOffset: 0, as: UInt32.self)
        entry.storeBytes(of: UInt32(participant), toByteOffset: 4, as: UInt32.self)
        entry.storeBytes(of: value, toByteOffset: 8, as: Int64.self)
        entry.storeBytes(of: queueLength, toByteOffset: 16, as: Int64.self)
        // Written last: the daemon reads an entry only once its time is there.
        atomic(entry + 24).store(MonotonicClock.nanoseconds, ordering: .releasing)
        logger.info("\(kind == 1 ? "Produced" : "Consumed") \(value) (queue length = \(queueLength))")
    }

    static func atomic(_ pointer: UnsafeMutableRawPointer) -> UnsafeAtomic<Int64> {
        UnsafeAtomic(at: pointer.assumingMemoryBound(to: Int64.AtomicRepresentation.self))
    }

    static func atomic32(_ pointer: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: pointer.assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }
}
