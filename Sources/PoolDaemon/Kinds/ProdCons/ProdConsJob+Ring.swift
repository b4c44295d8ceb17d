import Atomics
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The worker side over the shared-memory ring (`transport: shm`): the same records as over the
/// message queue (`ProdConsJob.Stats`), but no ledger, parking or settling, because the ring says
/// who holds what. A slot claimed by a participant carries its number until it is published or
/// released; a replacement finds its predecessor's (`SharedRing.slotHeld(by:)`) and finishes it.
/// The per-message path is a few atomics and stores into shared memory: no allocation, no system
/// call unless the other side sleeps, no log unless the job traces.
extension ProdConsJob {
    struct RingParticipant {
        let context: ParticipantContext
        let ring: SharedRing
        let area: UnsafeMutableRawPointer
        let parameters: UnsafeMutablePointer<Area>
        let producers: Int
        let consumers: Int
        let items: Int
        let payloadBytes: Int
        let batch: Int
        let tracing: Bool
        let stats: UnsafeMutablePointer<Stats>
        let consumedHint: UnsafeAtomic<Int64>
        /// The participant's progress for the daemon (`JobSegment.Participant.done`), resolved once.
        let done: UnsafeAtomic<Int64>

        init(context: ParticipantContext, ring: SharedRing, producers: Int) {
            self.context = context
            self.ring = ring
            area = context.segment.kindArea
            parameters = area.layout(Area.self)
            self.producers = producers
            consumers = context.segment.participants - producers
            items = Int(parameters.pointee.items)
            payloadBytes = Int(parameters.pointee.payloadBytes)
            batch = Int(parameters.pointee.batch)
            tracing = parameters.pointee.trace != 0
            stats = ProdConsJob.stats(in: area, participant: context.participant)
            consumedHint = parameters.atomic(\.consumed)
            done = context.mine.done
        }

        @inline(__always)
        private func stat(_ field: KeyPath<Stats, Int64>) -> UnsafeAtomic<Int64> { stats.atomic(field) }

        private func random() -> SplitMix64 {
            ProdConsJob.itemSource(seed: parameters.pointee.seed, context: context)
        }

        // MARK: Producing

        /// Publishes this producer's share, `batch` items a slot. The intent (count and sum after
        /// the message) is stored before the publish and the record after it, so a replacement that
        /// finds them apart asks the ring whether the claim was published: the records are exact
        /// whatever the moment of the death. A slot the predecessor claimed and did not publish is
        /// invisible to consumers: the replacement fills it with its own items.
        func produce() -> WorkerEvent.Outcome {
            let index = context.participant
            let share = Int64(ProdConsJob.share(producer: index, producers: producers, items: items))
            var random = random()
            let delay = parameters.pointee.produceLow...parameters.pointee.produceHigh
            let count = stat(\.count), sum = stat(\.sum), intentCount = stat(\.countBefore), intentSum = stat(\.sumBefore)
            var full = stats.pointee.waits
            defer { stats.pointee.waits = full }
            var sent = count.load(ordering: .acquiring)
            var total = sum.load(ordering: .relaxed)
            var unfinished: SharedRing.Slot?
            if context.isReplacement {
                if let held = ring.slotHeld(by: index), held.writing {
                    unfinished = held.slot
                    context.logger.notice("the last producer died writing a slot it had not published; filling it")
                } else if intentCount.load(ordering: .acquiring) != sent, ring.lastClaimPublished(by: index) {
                    // Published, not yet recorded: the intent is the record.
                    total = intentSum.load(ordering: .relaxed)
                    sent = intentCount.load(ordering: .relaxed)
                    sum.store(total, ordering: .releasing)
                    count.store(sent, ordering: .releasing)
                }
                intentSum.store(total, ordering: .relaxed)
                intentCount.store(sent, ordering: .releasing)
            }
            done.store(sent, ordering: .relaxed)
            var messages = 0
            let dieAfter = index == 0 ? context.faults.dieProducingAfter ?? -1 : -1
            let itemBytes = payloadBytes
            while sent < share {
                let slot: SharedRing.Slot
                if let taken = unfinished {
                    slot = taken
                    unfinished = nil
                } else if let claimed = ring.tryClaimForWriting(owner: index) {
                    slot = claimed
                } else {
                    full += 1
                    guard let claimed = waitForRoom() else { return .cancelled }
                    slot = claimed
                }
                let slotItems = min(batch, Int(share - sent))
                let drawn = random
                let values = slot.items
                var messageSum: Int64 = 0
                for item in 0..<slotItems {
                    // The notebook's random.randint(1, 10).
                    let value = Int64(random.next() % 10 + 1)
                    values.storeBytes(of: value, toByteOffset: item * itemBytes, as: Int64.self)
                    messageSum &+= value
                }
                slot.count = slotItems
                slot.producer = index
                intentSum.store(total &+ messageSum, ordering: .relaxed)
                intentCount.store(sent &+ Int64(slotItems), ordering: .releasing)
                ring.publish(slot, nowNanos: MonotonicClock.nanoseconds)
                if messages == dieAfter - 1 { FaultInjection.die() }
                sent &+= Int64(slotItems)
                total &+= messageSum
                context.record.beat(every: &messages)
                sum.store(total, ordering: .releasing)
                count.store(sent, ordering: .releasing)
                done.store(sent, ordering: .relaxed)
                if tracing {
                    // The slot may be consumed already: the values drawn again from the same state.
                    var again = drawn
                    for _ in 0..<slotItems { traceLine(kind: 1, value: Int64(again.next() % 10 + 1)) }
                }
                if delay.upperBound > 0,
                   !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random), beating: context.record) {
                    return .cancelled
                }
            }
            return .completed
        }

        /// Sleeps on the full ring in slices, looking at the cancel flag between them.
        private func waitForRoom() -> SharedRing.Slot? {
            while true {
                if context.segment.isCancelled { return nil }
                context.record.beat()
                if let slot = ring.claimForWriting(owner: context.participant, timeoutNanos: ProdConsJob.waitSlice) { return slot }
            }
        }

        // MARK: Consuming

        /// Takes slots until every item of the job is committed. `before` holds the committed
        /// count and sum ahead of each claim; storing the new count commits the slot; then it is
        /// released. A replacement that finds its predecessor's slot still claimed commits it
        /// (redelivers it) unless the count says it was committed, then releases it.
        func consume() -> WorkerEvent.Outcome {
            let index = context.participant
            var random = random()
            let delay = parameters.pointee.consumeLow...parameters.pointee.consumeHigh
            let consumerIndex = index - producers
            let histogram = ProdConsJob.histogram(in: area, participants: context.segment.participants, consumer: consumerIndex)
            let count = stat(\.count), sum = stat(\.sum), countBefore = stat(\.countBefore), sumBefore = stat(\.sumBefore)
            var empty = stats.pointee.waits
            defer { stats.pointee.waits = empty }
            var received = count.load(ordering: .acquiring)
            var total = sum.load(ordering: .relaxed)
            if context.isReplacement, let held = ring.slotHeld(by: index), !held.writing {
                var finished = false
                if received == countBefore.load(ordering: .relaxed) {
                    // Taken from the ring but not committed: process it now, once.
                    total = sumBefore.load(ordering: .relaxed)
                    sum.store(total, ordering: .relaxed)
                    stat(\.recovered).wrappingIncrement(by: Int64(held.slot.count), ordering: .relaxed)
                    context.logger.notice("redelivering \(held.slot.count) items the dead consumer had taken but not finished")
                    finished = commit(held.slot, histogram: histogram, received: &received, total: &total)
                }
                ring.release(held.slot)
                if finished {
                    ring.close()
                    return .completed
                }
            }
            done.store(received, ordering: .relaxed)
            var messages = 0
            let dieAfter = consumerIndex == 0 ? context.faults.dieConsumingAfter ?? -1 : -1
            while true {
                countBefore.store(received, ordering: .relaxed)
                sumBefore.store(total, ordering: .releasing)
                let slot: SharedRing.Slot
                if let claimed = ring.tryClaimForReading(owner: index) {
                    slot = claimed
                } else {
                    empty += 1
                    switch waitForItems() {
                    case .claimed(let claimed): slot = claimed
                    case .finished: return .completed
                    case .cancelled: return .cancelled
                    }
                }
                if messages == dieAfter - 1 { FaultInjection.die() }
                let finished = commit(slot, histogram: histogram, received: &received, total: &total)
                ring.release(slot)
                context.record.beat(every: &messages)
                if finished {
                    ring.close()
                    return .completed
                }
                if delay.upperBound > 0,
                   !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random), beating: context.record) {
                    return .cancelled
                }
            }
        }

        /// Consumes a claimed slot: latency, sum, then the count (the commit), then the shared
        /// hint. Returns whether every item of the job is now consumed.
        @inline(__always)
        private func commit(_ slot: SharedRing.Slot, histogram: LatencyHistogram, received: inout Int64, total: inout Int64) -> Bool {
            let count = slot.count
            histogram.record(MonotonicClock.nanoseconds - slot.enqueuedNanos)
            let values = slot.items
            let itemBytes = payloadBytes
            var messageSum: Int64 = 0
            for item in 0..<count {
                messageSum &+= values.load(fromByteOffset: item * itemBytes, as: Int64.self)
            }
            if tracing {
                for item in 0..<count { traceLine(kind: 2, value: values.load(fromByteOffset: item * itemBytes, as: Int64.self)) }
            }
            total &+= messageSum
            received &+= Int64(count)
            stat(\.sum).store(total, ordering: .relaxed)
            stat(\.count).store(received, ordering: .releasing)
            done.store(received, ordering: .relaxed)
            // The hint never runs ahead of the commits, so reaching the total through it is exact;
            // a hint lost with a dead worker only means the slower check in `waitForItems` sees the end.
            return consumedHint.wrappingIncrementThenLoad(by: Int64(count), ordering: .acquiringAndReleasing) >= Int64(items)
        }

        enum Wait { case claimed(SharedRing.Slot), finished, cancelled }

        /// Sleeps on the empty ring in slices, looking between them at the cancel flag and at the
        /// consumers' commits (the authority on the job's end).
        private func waitForItems() -> Wait {
            while true {
                if context.segment.isCancelled { return .cancelled }
                if committedTotal() >= Int64(items) { return .finished }
                context.record.beat()
                if let slot = ring.claimForReading(owner: context.participant, timeoutNanos: ProdConsJob.waitSlice) { return .claimed(slot) }
            }
        }

        private func committedTotal() -> Int64 {
            var total: Int64 = 0
            for consumer in producers..<(producers + consumers) {
                total += ProdConsJob.stats(in: area, participant: consumer).atomic(\.count).load(ordering: .acquiring)
            }
            return total
        }

        private func traceLine(kind: UInt32, value: Int64) {
            ProdConsJob.traceLine(kind: kind, participant: context.participant, value: value, queueLength: Int64(ring.length),
                                  in: ProdConsJob.traceEntries(in: area, participants: context.segment.participants, consumers: consumers,
                                                               messageSize: Message.headerSize + batch * payloadBytes),
                                  next: parameters.atomic(\.traceNext), items: items, logger: context.logger)
        }
    }
}
