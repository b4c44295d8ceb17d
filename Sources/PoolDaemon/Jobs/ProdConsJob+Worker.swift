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
        let queueName = queueName(segmentName: context.segment.segment.name)
        let blocking: MessageQueue, polling: MessageQueue
        do {
            blocking = try MessageQueue.open(name: queueName)
            polling = try MessageQueue.open(name: queueName, nonBlocking: true)
        } catch {
            context.logger.error("cannot open the job's queue: \(error)")
            return .failed
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
        /// that finds them apart cannot know whether the message reached the queue, so it produces
        /// the rest first and settles that one at the end (`settleUncertainMessage`).
        func produce() -> WorkerEvent.Outcome {
            let index = context.participant
            let share = items / producers + (index < items % producers ? 1 : 0)
            var random = random()
            let delay = delayRange(Area.produceLow, Area.produceHigh)
            let count = stat(Stats.count), sum = stat(Stats.sum), intentCount = stat(Stats.countBefore), intentSum = stat(Stats.sumBefore)
            var full = stats.load(fromByteOffset: Stats.waits, as: Int64.self)
            defer { stats.storeBytes(of: full, toByteOffset: Stats.waits, as: Int64.self) }
            let settling = ProdConsJob.atomic(stats + Stats.settling)
            var uncertain = false
            if context.isReplacement {
                guard settling.load(ordering: .relaxed) == 0 else {
                    // Its predecessor died while settling an uncertain message, and what it sent
                    // meanwhile was not recorded: no exact account is possible.
                    context.logger.error("two producers in a row died around an uncertain message; cannot say what was sent")
                    return .failed
                }
                // Sum before count on both sides of the send (see `ProdConsJob.Stats`): equal counts
                // mean the sum is right too.
                uncertain = intentCount.load(ordering: .relaxed) != count.load(ordering: .relaxed)
                if uncertain {
                    settling.store(1, ordering: .relaxed)
                    context.logger.notice("the message in flight when the last producer died may or may not be in the queue; settling it at the end")
                }
            }
            var sent = Int(uncertain ? intentCount.load(ordering: .relaxed) : count.load(ordering: .relaxed))
            var total = uncertain ? intentSum.load(ordering: .relaxed) : sum.load(ordering: .relaxed)
            if !uncertain { context.mine.done.store(Int64(sent), ordering: .relaxed) }
            // The uncertain message stays in the ledger; new ones are built beside it.
            let message = uncertain ? UnsafeMutableRawPointer.allocate(byteCount: blocking.messageSize, alignment: 16) : ledger
            defer { if uncertain { message.deallocate() } }
            var messages = 0
            let dieAfter = index == 0 ? context.faults.dieProducingAfter ?? -1 : -1
            while sent < share {
                let items = min(batch, share - sent)
                message.storeBytes(of: UInt32(index), toByteOffset: 0, as: UInt32.self)
                message.storeBytes(of: UInt32(items), toByteOffset: 4, as: UInt32.self)
                var messageSum: Int64 = 0
                for item in 0..<items {
                    // The notebook's random.randint(1, 10).
                    let value = Int64(random.next() % 10 + 1)
                    message.storeBytes(of: value, toByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                    messageSum += value
                }
                message.storeBytes(of: MonotonicClock.nanoseconds, toByteOffset: 8, as: Int64.self)
                if !uncertain {
                    intentSum.store(total + messageSum, ordering: .relaxed)
                    intentCount.store(Int64(sent + items), ordering: .releasing)
                }
                let length = Message.headerSize + items * payloadBytes
                switch send(UnsafeRawBufferPointer(start: message, count: length), full: &full) {
                case .sent: break
                case .cancelled: return .cancelled
                case .failed: return .failed
                }
                if messages == dieAfter - 1 { FaultInjection.die() }
                sent += items
                total += messageSum
                beatNow(every: &messages)
                if !uncertain {
                    sum.store(total, ordering: .releasing)
                    count.store(Int64(sent), ordering: .releasing)
                    context.mine.done.store(Int64(sent), ordering: .relaxed)
                }
                if tracing {
                    for item in 0..<items {
                        traceLine(kind: 1, value: message.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self))
                    }
                }
                if delay.upperBound > 0,
                   !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random), beating: context.record) {
                    return .cancelled
                }
            }
            guard uncertain else { return .completed }
            let outcome = settleUncertainMessage()
            if outcome == .completed {
                intentSum.store(total, ordering: .relaxed)
                intentCount.store(Int64(sent), ordering: .relaxed)
                sum.store(total, ordering: .releasing)
                count.store(Int64(sent), ordering: .releasing)
                settling.store(0, ordering: .releasing)
                context.mine.done.store(Int64(sent), ordering: .relaxed)
            }
            return outcome
        }

        /// The dead producer's last message (in the ledger) either reached the queue or not. Once
        /// every other producer is done, the queue is empty and no consumer holds a message, the
        /// consumers' committed total says which: all items, or all but this message's.
        private func settleUncertainMessage() -> WorkerEvent.Outcome {
            let length = Int(ledger.load(fromByteOffset: 4, as: UInt32.self))
            var stableSince: Int64?
            while true {
                if context.segment.isCancelled { return .cancelled }
                context.record.beat()
                let committed = committedTotal()
                // Every item committed: the message arrived (without it there would be fewer).
                // The queue may still hold the consumers' end-of-stream sentinels, so this comes
                // before any look at the queue.
                if committed >= Int64(items) { return .completed }
                if quiescent() {
                    // Seen twice, 20 ms apart: a consumer between the kernel's dequeue and its copy
                    // into the ledger would show as a changed total.
                    if let since = stableSince, MonotonicClock.nanoseconds - since >= 20_000_000, committed == committedTotal() {
                        guard committed == Int64(items - length) else {
                            context.logger.error("cannot settle the dead producer's last message: consumers committed \(committed) of \(items) items")
                            return .failed
                        }
                        var full: Int64 = 0
                        switch send(UnsafeRawBufferPointer(start: ledger, count: Message.headerSize + length * payloadBytes), full: &full) {
                        case .sent:
                            stat(Stats.recovered).wrappingIncrement(by: Int64(length), ordering: .relaxed)
                            context.logger.notice("the dead producer's last message was lost with it; sent \(length) items again")
                            return .completed
                        case .cancelled: return .cancelled
                        case .failed: return .failed
                        }
                    }
                    if stableSince == nil { stableSince = MonotonicClock.nanoseconds }
                } else {
                    stableSince = nil
                }
                _ = context.segment.pause(nanoseconds: 5_000_000, beating: context.record)
            }
        }

        /// No message is in the queue or in a consumer's hands and every other producer is done.
        private func quiescent() -> Bool {
            guard polling.currentDepth == 0 else { return false }
            for producer in 0..<producers where producer != context.participant {
                let other = area + Area.stats + producer * Area.statsSize
                let share = items / producers + (producer < items % producers ? 1 : 0)
                guard ProdConsJob.atomic(other + Stats.count).load(ordering: .acquiring) == Int64(share) else { return false }
            }
            for consumer in producers..<(producers + consumers) {
                let held = ProdConsJob.ledger(in: area, participants: producers + consumers, consumers: consumers,
                                              messageSize: blocking.messageSize, index: consumer)
                if ProdConsJob.atomic32(held).load(ordering: .acquiring) != ProdConsJob.emptyLedgerMark { return false }
            }
            return true
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
                case .failed: return .failed
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

        enum SendResult { case sent, cancelled, failed }

        /// Tries without blocking first (to count how often the queue was full), then blocks in the
        /// kernel, waking every slice to see whether the job was cancelled.
        private func send(_ bytes: UnsafeRawBufferPointer, full: inout Int64) -> SendResult {
            do {
                try polling.send(bytes)
                return .sent
            } catch {
                guard error.errno == EAGAIN else { return .failed }
            }
            full += 1
            while true {
                if context.segment.isCancelled { return .cancelled }
                context.record.beat()
                switch blocking.send(bytes, deadlineRealtimeNanos: MonotonicClock.realtimeNanoseconds + ProdConsJob.waitSlice) {
                case .success(true): return .sent
                case .success(false): continue
                case .failure: return .failed
                }
            }
        }

        enum ReceiveResult { case received, finished, cancelled, failed }

        private func receive(_ buffer: UnsafeMutableRawBufferPointer, empty: inout Int64) -> ReceiveResult {
            switch Result(catching: { () throws(IPCError) in try polling.receive(into: buffer) }) {
            case .success(.some): return .received
            case .success(nil): empty += 1
            case .failure: return .failed
            }
            while true {
                if context.segment.isCancelled { return .cancelled }
                if committedTotal() >= Int64(items) { return .finished }
                context.record.beat()
                switch blocking.receive(into: buffer, deadlineRealtimeNanos: MonotonicClock.realtimeNanoseconds + ProdConsJob.waitSlice) {
                case .success(true): return .received
                case .success(false): continue
                case .failure: return .failed
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
            let next = ProdConsJob.atomic(area + Area.traceNext)
            let index = Int(next.loadThenWrappingIncrement(ordering: .relaxed))
            guard index < 2 * items else { return }
            let length = Int64(polling.currentDepth)
            let entry = area + Area.traceEntries(context.segment.participants, consumers: consumers, messageSize: blocking.messageSize) + index * Area.traceEntrySize
            entry.storeBytes(of: kind, toByteOffset: 0, as: UInt32.self)
            entry.storeBytes(of: UInt32(context.participant), toByteOffset: 4, as: UInt32.self)
            entry.storeBytes(of: value, toByteOffset: 8, as: Int64.self)
            entry.storeBytes(of: length, toByteOffset: 16, as: Int64.self)
            // Written last: the daemon reads an entry only once its time is there.
            ProdConsJob.atomic(entry + 24).store(MonotonicClock.nanoseconds, ordering: .releasing)
            context.logger.info("\(kind == 1 ? "Produced" : "Consumed") \(value) (queue length = \(length))")
        }
    }
}
