import Atomics
import CPooldShim
import Logging
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The worker side: participants below `producers` produce, the rest consume. The per-item path
/// is a message send or receive and a few stores into shared memory; nothing is allocated and
/// nothing is logged unless the job traces.
extension ProdConsJob {
    /// How often a blocked send or receive wakes to look at the cancel flag and the job's end.
    static let waitSlice: Int64 = 100_000_000

    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let producers = Int(area(of: context.segment).pointee.producers)
        if area(of: context.segment).pointee.transport != 0 { return runOverRing(context, producers: producers) }
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
        let parameters: UnsafeMutablePointer<Area>
        let producers: Int
        let consumers: Int
        let items: Int
        let payloadBytes: Int
        let batch: Int
        let tracing: Bool
        let blocking: MessageQueue
        let polling: MessageQueue
        let stats: UnsafeMutablePointer<Stats>
        /// This participant's message in flight, in the segment (see `ProdConsJob.Stats`).
        let ledger: UnsafeMutableRawPointer
        let ledgerHeader: UnsafeMutablePointer<Message.Header>
        let consumedHint: UnsafeAtomic<Int64>

        init(context: ParticipantContext, producers: Int, blocking: MessageQueue, polling: MessageQueue) {
            self.context = context
            area = context.segment.kindArea
            parameters = ProdConsJob.area(of: context.segment)
            self.producers = producers
            consumers = context.segment.participants - producers
            items = Int(parameters.pointee.items)
            payloadBytes = Int(parameters.pointee.payloadBytes)
            batch = Int(parameters.pointee.batch)
            tracing = parameters.pointee.trace != 0
            self.blocking = blocking
            self.polling = polling
            stats = ProdConsJob.stats(in: area, participant: context.participant)
            ledger = ProdConsJob.ledger(in: area, participants: context.segment.participants, consumers: consumers,
                                        messageSize: blocking.messageSize, index: context.participant)
            ledgerHeader = Message.header(ledger)
            consumedHint = parameters.atomic(\.consumed)
        }

        private func delayRange(_ low: KeyPath<Area, Int64>, _ high: KeyPath<Area, Int64>) -> ClosedRange<Int64> {
            parameters.field(low).pointee...parameters.field(high).pointee
        }

        private func stat(_ field: KeyPath<Stats, Int64>) -> UnsafeAtomic<Int64> { stats.atomic(field) }

        /// The value of item `index` of the message in the ledger.
        private func ledgerItem(_ index: Int) -> UnsafeMutablePointer<Int64> {
            Message.item(ledger, index, payloadBytes: payloadBytes)
        }

        private func random() -> SplitMix64 {
            ProdConsJob.itemSource(seed: parameters.pointee.seed, context: context)
        }

        // MARK: Producing

        /// Sends this producer's share. Each message is built in the ledger; its count and sum go
        /// to `before` (the intent) ahead of the send and to `count`/`sum` after it. A replacement
        /// that finds them apart cannot know whether the message reached the queue: it parks it
        /// (`Regions.parked`), produces the rest, recording it as usual, and settles the parked ones
        /// at the end (`settleParkedMessages`). So every death leaves an exact record, however many
        /// come in a row.
        func produce() -> WorkerEvent.Outcome {
            let index = context.participant
            let share = Int64(ProdConsJob.share(producer: index, producers: producers, items: items))
            var random = random()
            let delay = delayRange(\.produceLow, \.produceHigh)
            let count = stat(\.count), sum = stat(\.sum), intentCount = stat(\.countBefore), intentSum = stat(\.sumBefore)
            var full = stats.pointee.waits
            defer { stats.pointee.waits = full }
            if context.isReplacement, let failure = parkMessageInFlight() { return failure }
            let start = account(of: index)
            var sent = start.count
            var total = start.sum
            var planned = start.planned
            context.mine.done.store(start.settled, ordering: .relaxed)
            // Parked messages are settled only after the loop: what arrived of them is fixed meanwhile.
            let arrivedBefore = start.arrivedItems
            var messages = 0
            let dieAfter = index == 0 ? context.faults.dieProducingAfter ?? -1 : -1
            while planned < share {
                let items = min(batch, Int(share - planned))
                ledgerHeader.pointee.producer = UInt32(index)
                ledgerHeader.pointee.count = UInt32(items)
                var messageSum: Int64 = 0
                for item in 0..<items {
                    // The notebook's random.randint(1, 10).
                    let value = Int64(random.next() % 10 + 1)
                    ledgerItem(item).pointee = value
                    messageSum += value
                }
                ledgerHeader.pointee.enqueuedNanos = MonotonicClock.nanoseconds
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
                context.record.beat(every: &messages)
                sum.store(total, ordering: .releasing)
                count.store(sent, ordering: .releasing)
                context.mine.done.store(sent + arrivedBefore, ordering: .relaxed)
                if tracing {
                    for item in 0..<items {
                        traceLine(kind: 1, value: ledgerItem(item).pointee)
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
            let count = stat(\.count), sum = stat(\.sum), intentCount = stat(\.countBefore), intentSum = stat(\.sumBefore)
            let recorded = count.load(ordering: .acquiring)
            guard intentCount.load(ordering: .acquiring) != recorded else { return nil }
            let items = Int(ledgerHeader.pointee.count)
            let length = Message.headerSize + items * payloadBytes
            var messageSum: Int64 = 0
            for item in 0..<items { messageSum += ledgerItem(item).pointee }
            let slots = (0..<ProdConsJob.parkedSlots).map { parked(context.participant, $0) }
            let held = slots.contains { $0.state.load(ordering: .acquiring) != ParkedState.free && memcmp($0.message, ledger, length) == 0 }
            if !held {
                guard let place = slots.first(where: { $0.state.load(ordering: .acquiring) == ParkedState.free }) else {
                    return context.fail("producer \(context.participant) died between a send and recording it more than \(ProdConsJob.parkedSlots) times; what it sent can no longer be accounted for")
                }
                place.message.copyMemory(from: ledger, byteCount: length)
                place.header.pointee.items = Int64(items)
                place.header.pointee.sum = messageSum
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
            let count = stat(\.count), sum = stat(\.sum), intentCount = stat(\.countBefore), intentSum = stat(\.sumBefore)
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
            stat(\.recovered).wrappingIncrement(by: entry.items, ordering: .relaxed)
            context.mine.done.store(account(of: context.participant).settled, ordering: .relaxed)
            context.logger.notice("a message a dead producer left uncertain was lost with it; sent its \(entry.items) items again")
            return nil
        }

        private func consumerReceives() -> [Int64] {
            (producers..<(producers + consumers)).map {
                ProdConsJob.stats(in: area, participant: $0).atomic(\.receives).load(ordering: .acquiring)
            }
        }

        /// What settling looks at: the queue, the consumers' commits, every producer's records.
        private func settlementSnapshot() -> SettlementSnapshot {
            var committedCount: Int64 = 0, committedSum: Int64 = 0, holding = false
            for consumer in producers..<(producers + consumers) {
                let record = ProdConsJob.stats(in: area, participant: consumer)
                committedCount += record.atomic(\.count).load(ordering: .acquiring)
                committedSum += record.atomic(\.sum).load(ordering: .acquiring)
                let held = ProdConsJob.ledger(in: area, participants: producers + consumers, consumers: consumers,
                                              messageSize: blocking.messageSize, index: consumer)
                if Message.header(held).atomic(\.producer).load(ordering: .acquiring) != ProdConsJob.emptyLedgerMark { holding = true }
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
            let delay = delayRange(\.consumeLow, \.consumeHigh)
            let consumerIndex = context.participant - producers
            let histogram = ProdConsJob.histogram(in: area, participants: context.segment.participants, consumer: consumerIndex)
            let count = stat(\.count), sum = stat(\.sum), countBefore = stat(\.countBefore), sumBefore = stat(\.sumBefore)
            let mark = ledgerHeader.atomic(\.producer)
            var empty = stats.pointee.waits
            defer { stats.pointee.waits = empty }
            var received = count.load(ordering: .relaxed)
            var total = sum.load(ordering: .relaxed)
            if context.isReplacement, mark.load(ordering: .acquiring) != ProdConsJob.emptyLedgerMark {
                if received == countBefore.load(ordering: .relaxed) {
                    // Taken from the queue but not committed: process it now, once.
                    total = sumBefore.load(ordering: .relaxed)
                    sum.store(total, ordering: .relaxed)
                    let items = Int64(ledgerHeader.pointee.count)
                    stat(\.recovered).wrappingIncrement(by: items, ordering: .relaxed)
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
                if ledgerHeader.pointee.count == 0 {
                    // A sentinel: every item has been consumed.
                    mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
                    return .completed
                }
                let finished = commit(histogram: histogram, count: count, sum: sum, received: &received, total: &total)
                mark.store(ProdConsJob.emptyLedgerMark, ordering: .releasing)
                context.record.beat(every: &messages)
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
            let items = Int(ledgerHeader.pointee.count)
            histogram.record(MonotonicClock.nanoseconds - ledgerHeader.pointee.enqueuedNanos)
            for item in 0..<items {
                let value = ledgerItem(item).pointee
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
                total += ProdConsJob.stats(in: area, participant: consumer).atomic(\.count).load(ordering: .acquiring)
            }
            return total
        }

        enum SendResult { case sent, cancelled, failed(IPCError) }

        /// Tries without blocking first (to count how often the queue was full), then blocks in the
        /// kernel, waking every slice to see whether the job was cancelled.
        private func send(_ bytes: UnsafeRawBufferPointer, full: inout Int64) -> SendResult {
            do {
                if try polling.trySend(bytes) { return .sent }
            } catch {
                return .failed(error)
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
            let receives = stat(\.receives)
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
            let sentinel = Message.Header()  // no items
            for _ in 1..<max(consumers, 1) {
                _ = withUnsafeBytes(of: sentinel) { try? polling.send($0) }
            }
        }

        private func traceLine(kind: UInt32, value: Int64) {
            ProdConsJob.traceLine(kind: kind, participant: context.participant, value: value, queueLength: Int64(polling.currentDepth),
                                  in: ProdConsJob.traceEntries(in: area, participants: context.segment.participants, consumers: consumers,
                                                               messageSize: blocking.messageSize),
                                  next: parameters.atomic(\.traceNext), items: items, logger: context.logger)
        }
    }
}

extension ProdConsJob {
    /// Writes one trace entry (and its log line) for a put (`kind` 1) or a get (2).
    static func traceLine(kind: UInt32, participant: Int, value: Int64, queueLength: Int64,
                          in entries: UnsafeMutablePointer<pool_prodcons_trace_entry>, next: UnsafeAtomic<Int64>,
                          items: Int, logger: Logger) {
        let index = Int(next.loadThenWrappingIncrement(ordering: .relaxed))
        guard index < 2 * items else { return }
        let entry = entries + index
        entry.pointee.kind = kind
        entry.pointee.participant = UInt32(participant)
        entry.pointee.value = value
        entry.pointee.queueLength = queueLength
        // Written last: the daemon reads an entry only once its time is there.
        entry.atomic(\.time).store(MonotonicClock.nanoseconds, ordering: .releasing)
        logger.info("\(kind == 1 ? "Produced" : "Consumed") \(value) (queue length = \(queueLength))")
    }
}
