import Atomics
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The worker side: participants below `producers` produce, the rest consume. The per-item path
/// is a message send or receive and a few stores into shared memory; nothing is allocated and
/// nothing is logged unless the job traces.
extension ProdConsJob: JobParticipantWork {
    /// How often a blocked send or receive wakes to look at the cancel flag and the job's end.
    static let waitSlice: Int64 = 100_000_000

    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let area = context.segment.kindArea
        let producers = Int(area.load(fromByteOffset: Area.producers, as: Int64.self))
        if area.load(fromByteOffset: Area.transport, as: Int64.self) != 0 { return runOverRing(context, producers: producers) }
        let queueName = queueName(segmentName: context.segment.segment.name)
        let blocking: MessageQueue, polling: MessageQueue
        do {
            blocking = try MessageQueue.open(name: queueName)
            polling = try MessageQueue.open(name: queueName, nonBlocking: true)
        } catch {
            return context.fail("cannot open the job's queue: \(error)", errno: error.errno)
        }
        defer {
            blocking.close()
            polling.close()
        }
        guard context.segment.arriveAndWaitForAll(beating: context.record, participant: context.participant) else { return .cancelled }
        if !context.isReplacement { context.mine.startedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed) }
        defer { context.mine.finishedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed) }
        let worker = Participant(context: context, producers: producers, blocking: blocking, polling: polling)
        return context.participant < producers ? worker.produce() : worker.consume()
    }

    private static func runOverRing(_ context: ParticipantContext, producers: Int) -> WorkerEvent.Outcome {
        let ring: SharedRing
        do {
            ring = try ProdConsJob.ring(in: context.segment)
        } catch {
            return context.fail("cannot attach the job's ring: \(error)", errno: error.errno)
        }
        guard context.segment.arriveAndWaitForAll(beating: context.record, participant: context.participant) else { return .cancelled }
        if !context.isReplacement { context.mine.startedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed) }
        defer { context.mine.finishedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed) }
        let worker = RingParticipant(context: context, ring: ring, producers: producers)
        return context.participant < producers ? worker.produce() : worker.consume()
    }

    /// One producer's or consumer's view of the job.
    struct Participant {
        let context: ParticipantContext
        let area: UnsafeMutableRawPointer
        let producers: Int
        let consumers: Int
        let items: Int
        let payloadBytes: Int
        let batch: Int
        let tracing: Bool
        let blocking: MessageQueue
        let polling: MessageQueue
        let stats: UnsafeMutableRawPointer
        /// This participant's message in flight, in the segment (see `ProdConsJob.Stats`).
        let ledger: UnsafeMutableRawPointer
        let consumedHint: UnsafeAtomic<Int64>

        init(context: ParticipantContext, producers: Int, blocking: MessageQueue, polling: MessageQueue) {
            self.context = context
            area = context.segment.kindArea
            self.producers = producers
            consumers = context.segment.participants - producers
            items = Int(area.load(fromByteOffset: Area.items, as: Int64.self))
            payloadBytes = Int(area.load(fromByteOffset: Area.payloadBytes, as: Int64.self))
            batch = Int(area.load(fromByteOffset: Area.batch, as: Int64.self))
            tracing = area.load(fromByteOffset: Area.trace, as: Int64.self) != 0
            self.blocking = blocking
            self.polling = polling
            stats = area + Area.stats + context.participant * Area.statsSize
            ledger = ProdConsJob.ledger(in: area, participants: context.segment.participants, consumers: consumers,
                                        messageSize: blocking.messageSize, index: context.participant)
            consumedHint = ProdConsJob.atomic(area + Area.consumed)
        }

        private func delayRange(_ low: Int, _ high: Int) -> ClosedRange<Int64> {
            area.load(fromByteOffset: low, as: Int64.self)...area.load(fromByteOffset: high, as: Int64.self)
        }

        private func stat(_ offset: Int) -> UnsafeAtomic<Int64> { ProdConsJob.atomic(stats + offset) }

        /// A queue that never blocks never reaches the heartbeats in `send` and `receive`: beat
        /// every 256 messages (a clock read), so a long busy run is not taken for a hang.
        @inline(__always)
        private func beatNow(every messages: inout Int) {
            messages &+= 1
            if messages & 255 == 0 { context.record.beat() }
        }

        private func random() -> SplitMix64 {
            // A replacement draws other values than its predecessor: the checksum compares what was
            // produced with what was consumed, not with a fixed sequence.
            let seed = area.load(fromByteOffset: Area.seed, as: UInt64.self)
            return SplitMix64(seed: seed &+ UInt64(context.participant) &* 0x9E37_79B9 &+ UInt64(context.attempt) &* 0xBF58_476D)
        }

        // MARK: Producing

        /// Sends this producer's share. Each message is built in the ledger; its count and sum go
        /// to `before` (the intent) ahead of the send and to `count`/`sum` after it. A replacement
        /// that finds them apart cannot know whether the message reached the queue: it parks it
        /// (`Area.parked`), produces the rest, recording it as usual, and settles the parked ones
        /// at the end (`settleParkedMessages`). So every death leaves an exact record, however many
        /// come in a row.
        func produce() -> WorkerEvent.Outcome {
            let index = context.participant
            let share = Int64(ProdConsJob.share(producer: index, producers: producers, items: items))
            var random = random()
            let delay = delayRange(Area.produceLow, Area.produceHigh)
            let count = stat(Stats.count), sum = stat(Stats.sum), intentCount = stat(Stats.countBefore), intentSum = stat(Stats.sumBefore)
            var full = stats.load(fromByteOffset: Stats.waits, as: Int64.self)
            defer { stats.storeBytes(of: full, toByteOffset: Stats.waits, as: Int64.self) }
            if context.isReplacement, let failure = parkMessageInFlight() { return failure }
            let start = account(of: index)
            var sent = start.count
            var total = start.sum
            var planned = start.planned
            context.mine.done.store(start.settled, ordering: .relaxed)
            var messages = 0
            let dieAfter = index == 0 ? context.faults.dieProducingAfter ?? -1 : -1
            while planned < share {
                let items = min(batch, Int(share - planned))
                ledger.storeBytes(of: UInt32(index), toByteOffset: 0, as: UInt32.self)
                ledger.storeBytes(of: UInt32(items), toByteOffset: 4, as: UInt32.self)
                var messageSum: Int64 = 0
                for item in 0..<items {
                    // The notebook's random.randint(1, 10).
                    let value = Int64(random.next() % 10 + 1)
                    ledger.storeBytes(of: value, toByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                    messageSum += value
                }
                ledger.storeBytes(of: MonotonicClock.nanoseconds, toByteOffset: 8, as: Int64.self)
                intentSum.store(total + messageSum, ordering: .relaxed)
                intentCount.store(sent + Int64(items), ordering: .releasing)
                let length = Message.headerSize + items * payloadBytes
                switch send(UnsafeRawBufferPointer(start: ledger, count: length), full: &full) {
                case .sent: break
                case .cancelled: return .cancelled
                case .failed(let error): return context.fail("producer \(index) cannot send to the job's queue: \(error)", errno: error.errno)
                }
                if messages == dieAfter - 1 { FaultInjection.die() }
                sent += Int64(items)
                total += messageSum
                planned += Int64(items)
                beatNow(every: &messages)
                sum.store(total, ordering: .releasing)
                count.store(sent, ordering: .releasing)
                context.mine.done.store(sent + start.arrivedItems, ordering: .relaxed)
                if tracing {
                    for item in 0..<items {
                        traceLine(kind: 1, value: ledger.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self))
                    }
                }
                if delay.upperBound > 0,
                   !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random), beating: context.record) {
                    return .cancelled
                }
            }
            guard start.parked.contains(where: { $0.state == ParkedState.uncertain }) else { return .completed }
            return settleParkedMessages()
        }

        private func parked(_ producer: Int, _ slot: Int) -> ParkedMessage {
            ProdConsJob.parked(in: area, participants: context.segment.participants, consumers: consumers,
                               messageSize: blocking.messageSize, producer: producer, slot: slot)
        }

        private func account(of producer: Int) -> ProducerAccount {
            ProdConsJob.account(in: area, participants: context.segment.participants, consumers: consumers,
                                messageSize: blocking.messageSize, producer: producer, items: items)
        }

        /// The predecessor died between announcing a send and recording it: the message in the
        /// ledger may or may not be in the queue. It is parked, unless it is already (the
        /// predecessor died while parking it, or before resending a parked one), and the records
        /// are set back to before it. Returns a failure when no parking place is left.
        private func parkMessageInFlight() -> WorkerEvent.Outcome? {
            let count = stat(Stats.count), sum = stat(Stats.sum), intentCount = stat(Stats.countBefore), intentSum = stat(Stats.sumBefore)
            let recorded = count.load(ordering: .acquiring)
            guard intentCount.load(ordering: .acquiring) != recorded else { return nil }
            let items = Int(ledger.load(fromByteOffset: 4, as: UInt32.self))
            let length = Message.headerSize + items * payloadBytes
            var messageSum: Int64 = 0
            for item in 0..<items { messageSum += ledger.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self) }
            let slots = (0..<ProdConsJob.parkedSlots).map { parked(context.participant, $0) }
            let held = slots.contains { $0.state.load(ordering: .acquiring) != ParkedState.free && memcmp($0.message, ledger, length) == 0 }
            if !held {
                guard let place = slots.first(where: { $0.state.load(ordering: .acquiring) == ParkedState.free }) else {
                    return context.fail("producer \(context.participant) died between a send and recording it more than \(ProdConsJob.parkedSlots) times; what it sent can no longer be accounted for")
                }
                place.message.copyMemory(from: ledger, byteCount: length)
                place.base.storeBytes(of: Int64(items), toByteOffset: ParkedMessage.itemsOffset, as: Int64.self)
                place.base.storeBytes(of: messageSum, toByteOffset: ParkedMessage.sumOffset, as: Int64.self)
                place.state.store(ParkedState.uncertain, ordering: .releasing)
                context.logger.notice("the message in flight when the last producer died may or may not be in the queue; settling it at the end")
            }
            // The records as they were before the message (the sum may have been stored already).
            let before = intentSum.load(ordering: .relaxed) - messageSum
            sum.store(before, ordering: .relaxed)
            intentSum.store(before, ordering: .relaxed)
            intentCount.store(recorded, ordering: .releasing)
            return nil
        }

        /// Settles this producer's parked messages once the job is quiet: every producer has sent
        /// all but its parked messages, the queue is empty and no consumer holds a message. The
        /// consumers' committed count and sum then say which parked messages (of all producers)
        /// never arrived; this producer sends its own of those again and marks the rest arrived.
        /// Every producer decides from the same quiet state, so they agree.
        private func settleParkedMessages() -> WorkerEvent.Outcome {
            // A quiet snapshot, the consumers' receive counts read after it, and whether each has
            // moved on since: a message a consumer had taken from the kernel but not yet copied to
            // its ledger when the snapshot was read is in a ledger (or committed) by then.
            var candidate: (snapshot: SettlementSnapshot, receives: [Int64], passed: Bool)?
            while true {
                if context.segment.isCancelled { return .cancelled }
                context.record.beat()
                let snapshot = settlementSnapshot()
                let mine = snapshot.producers[context.participant].parked.filter { $0.state == ParkedState.uncertain }
                if mine.isEmpty { return .completed }
                // Every item committed: the parked messages arrived. The queue may still hold the
                // consumers' end-of-stream sentinels, so this comes before any look at the queue.
                if snapshot.committedCount >= Int64(items) {
                    guard snapshot.committedCount == Int64(items) else {
                        return context.fail("consumers committed \(snapshot.committedCount) items of \(items)")
                    }
                    for entry in mine { markArrived(entry) }
                    return .completed
                }
                if snapshot.isQuiet {
                    // The same quiet state before and after every consumer returned from the queue.
                    if let confirmed = candidate, confirmed.passed, confirmed.snapshot == snapshot {
                        guard let lost = snapshot.lostMessages() else {
                            return context.fail("cannot settle the messages dead producers left uncertain: consumers committed \(snapshot.committedCount) of \(items) items, and no choice of the \(snapshot.uncertainCount) uncertain messages accounts for the rest")
                        }
                        for entry in mine {
                            if lost.contains(ParkedKey(producer: context.participant, slot: entry.slot)) {
                                if let failure = resend(entry) { return failure }
                            } else {
                                markArrived(entry)
                            }
                        }
                        return .completed
                    }
                    if let waiting = candidate, waiting.snapshot == snapshot {
                        let receives = consumerReceives()
                        candidate?.passed = zip(receives, waiting.receives).allSatisfy { $0 > $1 }
                    } else {
                        candidate = (snapshot, consumerReceives(), false)
                    }
                } else {
                    candidate = nil
                }
                _ = context.segment.pause(nanoseconds: 5_000_000, beating: context.record)
            }
        }

        private func markArrived(_ entry: ProducerAccount.Parked) {
            parked(context.participant, entry.slot).state.store(ParkedState.arrived, ordering: .releasing)
            context.mine.done.store(account(of: context.participant).settled, ordering: .relaxed)
        }

        /// Sends a parked message that never arrived, through the ledger like any other: the
        /// intent first, then the parking place is freed, then the send. A death before the free
        /// leaves the ledger equal to the parked message (not parked twice, not sent); after it,
        /// the message is in flight as usual.
        private func resend(_ entry: ProducerAccount.Parked) -> WorkerEvent.Outcome? {
            let count = stat(Stats.count), sum = stat(Stats.sum), intentCount = stat(Stats.countBefore), intentSum = stat(Stats.sumBefore)
            let place = parked(context.participant, entry.slot)
            let length = Message.headerSize + Int(entry.items) * payloadBytes
            ledger.copyMemory(from: place.message, byteCount: length)
            let sent = count.load(ordering: .relaxed), total = sum.load(ordering: .relaxed)
            intentSum.store(total + entry.sum, ordering: .relaxed)
            intentCount.store(sent + entry.items, ordering: .releasing)
            place.state.store(ParkedState.free, ordering: .releasing)
            var full: Int64 = 0
            switch send(UnsafeRawBufferPointer(start: ledger, count: length), full: &full) {
            case .sent: break
            case .cancelled: return .cancelled
            case .failed(let error):
                return context.fail("producer \(context.participant) cannot send to the job's queue: \(error)", errno: error.errno)
            }
            sum.store(total + entry.sum, ordering: .releasing)
            count.store(sent + entry.items, ordering: .releasing)
            stat(Stats.recovered).wrappingIncrement(by: entry.items, ordering: .relaxed)
            context.mine.done.store(account(of: context.participant).settled, ordering: .relaxed)
            context.logger.notice("a message a dead producer left uncertain was lost with it; sent its \(entry.items) items again")
            return nil
        }

        private func consumerReceives() -> [Int64] {
            (producers..<(producers + consumers)).map {
                ProdConsJob.atomic(area + Area.stats + $0 * Area.statsSize + Stats.receives).load(ordering: .acquiring)
            }
        }

        /// What settling looks at: the queue, the consumers' commits, every producer's records.
        private func settlementSnapshot() -> SettlementSnapshot {
            var committedCount: Int64 = 0, committedSum: Int64 = 0, holding = false
            for consumer in producers..<(producers + consumers) {
                let record = area + Area.stats + consumer * Area.statsSize
                committedCount += ProdConsJob.atomic(record + Stats.count).load(ordering: .acquiring)
                committedSum += ProdConsJob.atomic(record + Stats.sum).load(ordering: .acquiring)
                let held = ProdConsJob.ledger(in: area, participants: producers + consumers, consumers: consumers,
                                              messageSize: blocking.messageSize, index: consumer)
                if ProdConsJob.atomic32(held).load(ordering: .acquiring) != ProdConsJob.emptyLedgerMark { holding = true }
            }
            return SettlementSnapshot(queueDepth: polling.currentDepth, consumersHold: holding,
                                      committedCount: committedCount, committedSum: committedSum,
                                      producers: (0..<producers).map { account(of: $0) })
        }

        // MARK: Consuming

        /// Receives straight into the ledger, so a message the kernel has handed over is never only
        /// in a dead process's memory. `before` holds the committed count and sum ahead of each
        /// receive; storing the new count commits the message; then the ledger is cleared.
        func consume() -> WorkerEvent.Outcome {
            var random = random()
            let delay = delayRange(Area.consumeLow, Area.consumeHigh)
            let consumerIndex = context.participant - producers
            let histogram = LatencyHistogram(at: area + Area.histograms(context.segment.participants) + consumerIndex * LatencyHistogram.byteSize)
            let count = stat(Stats.count), sum = stat(Stats.sum), countBefore = stat(Stats.countBefore), sumBefore = stat(Stats.sumBefore)
            let mark = ProdConsJob.atomic32(ledger)
            var empty = stats.load(fromByteOffset: Stats.waits, as: Int64.self)
            defer { stats.storeBytes(of: empty, toByteOffset: Stats.waits, as: Int64.self) }
            var received = count.load(ordering: .relaxed)
            var total = sum.load(ordering: .relaxed)
            if context.isReplacement, mark.load(ordering: .acquiring) != ProdConsJob.emptyLedgerMark {
                if received == countBefore.load(ordering: .relaxed) {
                    // Taken from the queue but not committed: process it now, once.
                    total = sumBefore.load(ordering: .relaxed)
                    sum.store(total, ordering: .relaxed)
                    let items = Int64(ledger.load(fromByteOffset: 4, as: UInt32.self))
                    stat(Stats.recovered).wrappingIncrement(by: items, ordering: .relaxed)
                    context.logger.notice("redelivering \(items) items the dead consumer had taken but not finished")
                    if commit(histogram: histogram, count: count, sum: sum, received: &received, total: &total) {
                        mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
                        releaseOtherConsumers()
                        return .completed
                    }
                }
                mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
            }
            context.mine.done.store(received, ordering: .relaxed)
            let buffer = UnsafeMutableRawBufferPointer(start: ledger, count: blocking.messageSize)
            var messages = 0
            let dieAfter = consumerIndex == 0 ? context.faults.dieConsumingAfter ?? -1 : -1
            while true {
                countBefore.store(received, ordering: .relaxed)
                sumBefore.store(total, ordering: .releasing)
                switch receive(buffer, empty: &empty) {
                case .received: break
                case .finished: return .completed
                case .cancelled: return .cancelled
                case .failed(let error):
                    return context.fail("consumer \(consumerIndex) cannot receive from the job's queue: \(error)", errno: error.errno)
                }
                if messages == dieAfter - 1 { FaultInjection.die() }
                if ledger.load(fromByteOffset: 4, as: UInt32.self) == 0 {
                    // A sentinel: every item has been consumed.
                    mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
                    return .completed
                }
                let finished = commit(histogram: histogram, count: count, sum: sum, received: &received, total: &total)
                mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
                beatNow(every: &messages)
                if finished {
                    releaseOtherConsumers()
                    return .completed
                }
                if delay.upperBound > 0,
                   !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random), beating: context.record) {
                    return .cancelled
                }
            }
        }

        /// Consumes the message in the ledger: sum, then the count (the commit), then the shared
        /// hint. Returns whether every item of the job is now consumed.
        private func commit(histogram: LatencyHistogram, count: UnsafeAtomic<Int64>, sum: UnsafeAtomic<Int64>,
                            received: inout Int64, total: inout Int64) -> Bool {
            let items = Int(ledger.load(fromByteOffset: 4, as: UInt32.self))
            histogram.record(MonotonicClock.nanoseconds - ledger.load(fromByteOffset: 8, as: Int64.self))
            for item in 0..<items {
                let value = ledger.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                total += value
                if tracing { traceLine(kind: 2, value: value) }
            }
            received += Int64(items)
            sum.store(total, ordering: .relaxed)
            count.store(received, ordering: .releasing)
            context.mine.done.store(received, ordering: .relaxed)
            // The hint never runs ahead of the commits, so reaching the total through it is exact;
            // a hint lost with a dead worker only means the slower check below notices the end.
            let hint = consumedHint.wrappingIncrementThenLoad(by: Int64(items), ordering: .acquiringAndReleasing)
            return hint >= Int64(self.items)
        }

        /// Items committed by every consumer: the authority on whether the job is done.
        private func committedTotal() -> Int64 {
            var total: Int64 = 0
            for consumer in producers..<(producers + consumers) {
                total += ProdConsJob.atomic(area + Area.stats + consumer * Area.statsSize + Stats.count).load(ordering: .acquiring)
            }
            return total
        }

        enum SendResult { case sent, cancelled, failed(IPCError) }

        /// Tries without blocking first (to count how often the queue was full), then blocks in the
        /// kernel, waking every slice to see whether the job was cancelled.
        private func send(_ bytes: UnsafeRawBufferPointer, full: inout Int64) -> SendResult {
            do {
                try polling.send(bytes)
                return .sent
            } catch {
                guard error.errno == EAGAIN else { return .failed(error) }
            }
            full += 1
            while true {
                if context.segment.isCancelled { return .cancelled }
                context.record.beat()
                switch blocking.send(bytes, deadlineRealtimeNanos: MonotonicClock.realtimeNanoseconds + ProdConsJob.waitSlice) {
                case .success(true): return .sent
                case .success(false): continue
                case .failure(let error): return .failed(error)
                }
            }
        }

        enum ReceiveResult { case received, finished, cancelled, failed(IPCError) }

        private func receive(_ buffer: UnsafeMutableRawBufferPointer, empty: inout Int64) -> ReceiveResult {
            // Counted after each return, when a message taken is in the ledger (see `settleParkedMessages`).
            let receives = stat(Stats.receives)
            let polled = Result(catching: { () throws(IPCError) in try polling.receive(into: buffer) })
            receives.wrappingIncrement(ordering: .releasing)
            switch polled {
            case .success(.some): return .received
            case .success(nil): empty += 1
            case .failure(let error): return .failed(error)
            }
            while true {
                if context.segment.isCancelled { return .cancelled }
                if committedTotal() >= Int64(items) { return .finished }
                context.record.beat()
                let result = blocking.receive(into: buffer, deadlineRealtimeNanos: MonotonicClock.realtimeNanoseconds + ProdConsJob.waitSlice)
                receives.wrappingIncrement(ordering: .releasing)
                switch result {
                case .success(true): return .received
                case .success(false): continue
                case .failure(let error): return .failed(error)
                }
            }
        }

        /// The last item is in: wake consumers blocked on the empty queue with sentinels (best
        /// effort; the others also see the total at their next slice).
        private func releaseOtherConsumers() {
            var sentinel = (UInt32(0), UInt32(0), Int64(0))
            for _ in 1..<max(consumers, 1) {
                _ = withUnsafeBytes(of: &sentinel) { try? polling.send(UnsafeRawBufferPointer(rebasing: $0[..<Message.headerSize])) }
            }
        }

        private func traceLine(kind: UInt32, value: Int64) {
            ProdConsJob.traceLine(kind: kind, participant: context.participant, value: value, queueLength: Int64(polling.currentDepth),
                                  area: area, entries: Area.traceEntries(context.segment.participants, consumers: consumers, messageSize: blocking.messageSize),
                                  items: items, logger: context.logger)
        }
    }
}
