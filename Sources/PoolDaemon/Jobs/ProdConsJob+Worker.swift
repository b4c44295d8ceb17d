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
        guard context.segment.arriveAndWaitForAll() else { return .cancelled }
        context.mine.startedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed)
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
        let consumedTotal: UnsafeAtomic<Int64>

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
            consumedTotal = ProdConsJob.atomic(area + Area.consumed)
        }

        private func delayRange(_ low: Int, _ high: Int) -> ClosedRange<Int64> {
            area.load(fromByteOffset: low, as: Int64.self)...area.load(fromByteOffset: high, as: Int64.self)
        }

        func produce() -> WorkerEvent.Outcome {
            let index = context.participant
            let share = items / producers + (index < items % producers ? 1 : 0)
            var random = SplitMix64(seed: area.load(fromByteOffset: Area.seed, as: UInt64.self) &+ UInt64(index) &* 0x9E37_79B9)
            let delay = delayRange(Area.produceLow, Area.produceHigh)
            var sent = 0, sum: Int64 = 0, full: Int64 = 0
            defer { publish(count: sent, sum: sum, waits: full) }
            return withUnsafeTemporaryAllocation(byteCount: blocking.messageSize, alignment: 16) { buffer -> WorkerEvent.Outcome in
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                let message = buffer.baseAddress!
                while sent < share {
                    let count = min(batch, share - sent)
                    message.storeBytes(of: UInt32(index), toByteOffset: 0, as: UInt32.self)
                    message.storeBytes(of: UInt32(count), toByteOffset: 4, as: UInt32.self)
                    for item in 0..<count {
                        // The notebook's random.randint(1, 10).
                        let value = Int64(random.next() % 10 + 1)
                        message.storeBytes(of: value, toByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                        sum += value
                    }
                    message.storeBytes(of: MonotonicClock.nanoseconds, toByteOffset: 8, as: Int64.self)
                    let length = Message.headerSize + count * payloadBytes
                    switch send(UnsafeRawBufferPointer(start: message, count: length), full: &full) {
                    case .sent: break
                    case .cancelled: return .cancelled
                    case .failed: return .failed
                    }
                    sent += count
                    stats.storeBytes(of: Int64(sent), toByteOffset: 0, as: Int64.self)
                    context.mine.done.store(Int64(sent), ordering: .relaxed)
                    if tracing {
                        for item in 0..<count {
                            let value = message.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                            traceLine(kind: 1, value: value)
                        }
                    }
                    if delay.upperBound > 0, !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random)) {
                        return .cancelled
                    }
                }
                return .completed
            }
        }

        func consume() -> WorkerEvent.Outcome {
            var random = SplitMix64(seed: area.load(fromByteOffset: Area.seed, as: UInt64.self) &+ UInt64(context.participant) &* 0x9E37_79B9)
            let delay = delayRange(Area.consumeLow, Area.consumeHigh)
            let consumerIndex = context.participant - producers
            let histogram = LatencyHistogram(at: area + Area.histograms(context.segment.participants) + consumerIndex * LatencyHistogram.byteSize)
            var received = 0, sum: Int64 = 0, empty: Int64 = 0
            defer { publish(count: received, sum: sum, waits: empty) }
            return withUnsafeTemporaryAllocation(byteCount: blocking.messageSize, alignment: 16) { buffer -> WorkerEvent.Outcome in
                let message = buffer.baseAddress!
                while true {
                    switch receive(buffer, empty: &empty) {
                    case .received: break
                    case .finished: return .completed
                    case .cancelled: return .cancelled
                    case .failed: return .failed
                    }
                    let now = MonotonicClock.nanoseconds
                    let count = Int(message.load(fromByteOffset: 4, as: UInt32.self))
                    if count == 0 { return .completed }  // a sentinel: every item has been consumed
                    histogram.record(now - message.load(fromByteOffset: 8, as: Int64.self))
                    for item in 0..<count {
                        let value = message.load(fromByteOffset: Message.headerSize + item * payloadBytes, as: Int64.self)
                        sum += value
                        if tracing { traceLine(kind: 2, value: value) }
                    }
                    received += count
                    stats.storeBytes(of: Int64(received), toByteOffset: 0, as: Int64.self)
                    context.mine.done.store(Int64(received), ordering: .relaxed)
                    let total = consumedTotal.wrappingIncrementThenLoad(by: Int64(count), ordering: .acquiringAndReleasing)
                    if total >= Int64(items) {
                        releaseOtherConsumers()
                        return .completed
                    }
                    if delay.upperBound > 0, !context.segment.pause(nanoseconds: Int64.random(in: delay, using: &random)) {
                        return .cancelled
                    }
                }
            }
        }

        private func publish(count: Int, sum: Int64, waits: Int64) {
            stats.storeBytes(of: Int64(count), toByteOffset: 0, as: Int64.self)
            stats.storeBytes(of: sum, toByteOffset: 8, as: Int64.self)
            stats.storeBytes(of: waits, toByteOffset: 16, as: Int64.self)
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
                if consumedTotal.load(ordering: .acquiring) >= Int64(items) { return .finished }
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
            let entry = area + Area.traceEntries(context.segment.participants, consumers: consumers) + index * Area.traceEntrySize
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
