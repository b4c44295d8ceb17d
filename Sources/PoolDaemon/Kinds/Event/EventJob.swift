import Atomics
import CPooldShim
import PoolIPC
import PoolProtocol

/// The notebook's Event: waiters block on one event in shared memory (a futex word); timeout waiters
/// loop "doing something" and wait with a timeout until it is set. The daemon sets it after
/// `setAfter`, as the notebook's main thread does.
struct EventJob: JobKind {
    let waiters: Int
    let timeoutWaiters: Int
    let timeout: Int64
    let setAfter: Int64
    static let code: UInt32 = 3
    var workers: Int { waiters + timeoutWaiters }
    var totalWork: Int { workers }

    /// The kind area, `pool_event_area`, then a `pool_event_record` per participant.
    typealias Area = pool_event_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    static func records(in area: UnsafeMutablePointer<Area>) -> UnsafeMutablePointer<pool_event_record> {
        area.end.layout(pool_event_record.self)
    }

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> EventJob {
        var reader = try ParameterReader(parameters)
        let waiters = try reader.int("waiters", default: 1, in: 0...1024)
        let timeoutWaiters = try reader.int("timeoutWaiters", default: 1, in: 0...1024)
        let timeout = try reader.duration("timeout", default: 2_000_000_000, in: 1_000_000...3_600_000_000_000)
        let setAfter = try reader.duration("setAfter", default: 500_000_000, in: 0...3_600_000_000_000)
        try reader.finish(kind: Self.name)
        guard waiters + timeoutWaiters >= 1 else {
            throw PoolError.invalidParameter("waiters", "an event job needs at least one waiter or timeout waiter")
        }
        if waiters + timeoutWaiters > limits.poolSize {
            throw limits.poolTooSmall(requested: waiters + timeoutWaiters)
        }
        return EventJob(waiters: waiters, timeoutWaiters: timeoutWaiters, timeout: timeout, setAfter: setAfter)
    }

    var parameters: JSONValue {
        JSONValue(reporting: EventParameters(waiters: waiters, timeoutWaiters: timeoutWaiters, timeout: DurationText.format(timeout),
                                             setAfter: DurationText.format(setAfter)))
    }

    var kindAreaSize: Int { MemoryLayout<Area>.size + workers * MemoryLayout<pool_event_record>.stride }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = Self.area(of: segment)
        area.pointee.timeout = timeout
        area.pointee.waiters = Int64(waiters)
    }

    func makeMonitor(segment: JobSegment) -> (any JobMonitor)? {
        EventSetter(segment: segment, delay: setAfter)
    }

    /// The daemon's side: set the event once, after the delay.
    final class EventSetter: JobMonitor {
        let segment: JobSegment
        let initialDelay: Duration

        init(segment: JobSegment, delay: Int64) {
            self.segment = segment
            self.initialDelay = .nanoseconds(delay)
        }

        func tick() -> Duration? {
            let area = EventJob.area(of: segment)
            area.pointee.setNanos = MonotonicClock.nanoseconds
            let word = FutexWord(area.field(\.event))
            word.atomic.store(1, ordering: .releasing)
            word.wake()
            return nil
        }
    }

    /// Waiting: participants that have taken their part and not yet received the event (nor
    /// ended); woken: those that received it.
    func addLiveFigures(to progress: inout JobProgress, segment: JobSegment, monitor: (any JobMonitor)?) {
        var waiting = 0, woken = 0
        let records = Self.records(in: Self.area(of: segment))
        for index in 0..<workers {
            let participant = segment.participant(index)
            if records[index].received != 0 {
                woken += 1
            } else if participant.pid.load(ordering: .relaxed) != 0, participant.done.load(ordering: .relaxed) == 0 {
                waiting += 1
            }
        }
        (progress.waiting, progress.woken) = (waiting, woken)
    }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> EventResult {
        let area = Self.area(of: segment)
        let setNanos = area.pointee.setNanos
        let records = Self.records(in: area)
        let waiters = (0..<workers).map { index in
            let record = records[index]
            let received = record.received != 0
            let participant = segment.participant(index)
            return EventWaiter(
                participant: index, slot: Int(participant.slot.load(ordering: .relaxed)),
                pid: Int(participant.pid.load(ordering: .relaxed)), withTimeout: index >= self.waiters, received: received,
                timeouts: Int(record.timeouts),
                wakeLatencyMicros: received && setNanos > 0 ? Double(max(0, record.wokeNanos - setNanos)) / 1000 : nil)
        }
        return EventResult(set: setNanos > 0, setAfter: DurationText.format(setAfter), timeout: DurationText.format(timeout),
                           waiters: waiters)
    }
}

extension EventJob {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let area = Self.area(of: context.segment)
        let timeout = area.pointee.timeout
        let withTimeout = context.participant >= Int(area.pointee.waiters)
        let event = FutexWord(area.field(\.event))
        let record = Self.records(in: area) + context.participant
        var timeouts: Int64 = 0
        defer {
            record.pointee.timeouts = timeouts
            context.mine.done.store(1, ordering: .relaxed)
        }
        if withTimeout {
            while event.atomic.load(ordering: .acquiring) == 0 {
                context.logger.info("I'm also doing something")
                context.logger.debug("waiting for an event from the daemon, but with a timeout ...")
                switch waitForEvent(event, context: context, timeoutNanos: timeout) {
                case .set: break
                case .timedOut:
                    timeouts += 1
                    context.logger.debug("received event False")
                case .cancelled: return .cancelled
                }
            }
        } else {
            context.logger.info("I'm doing something")
            context.logger.debug("waiting for an event from the daemon ...")
            if waitForEvent(event, context: context, timeoutNanos: nil) == .cancelled { return .cancelled }
        }
        record.pointee.wokeNanos = MonotonicClock.nanoseconds
        record.pointee.received = 1
        context.logger.info("received event True")
        return .completed
    }

    enum WaitResult { case set, timedOut, cancelled }

    /// Sleeps on the event's futex until it is set, the timeout passes or the job is cancelled.
    /// Sleeps are sliced so that a cancellation is seen within 100 ms.
    static func waitForEvent(_ event: FutexWord, context: ParticipantContext, timeoutNanos: Int64?) -> WaitResult {
        let deadline = timeoutNanos.map { MonotonicClock.nanoseconds + $0 }
        while event.atomic.load(ordering: .acquiring) == 0 {
            if context.segment.isCancelled { return .cancelled }
            var slice: Int64 = 100_000_000
            if let deadline {
                let left = deadline - MonotonicClock.nanoseconds
                if left <= 0 { return .timedOut }
                slice = min(slice, left)
            }
            context.record.beat()
            _ = event.wait(whileEqualTo: 0, timeoutNanos: slice)
        }
        return .set
    }
}
