import Atomics
import CPooldShim
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The notebook's counter race: workers add to (or subtract from) one counter in shared memory,
/// without a lock (`unsafe`, losing updates), under a robust process-shared mutex (`locked`), or
/// with atomic fetch-add (`atomic`).
struct CounterJob: JobKind {
    let settings: CounterParameters
    static let code: UInt32 = 1
    var workers: Int { settings.workers }

    /// The kind area, `pool_counter_area`: parameters, then the counter and the mutex, each on a
    /// cache line of its own so that the race is on the counter alone. In `unsafe` mode the counter
    /// holds a tally instead (see `UnsafeTally`).
    ///
    /// Beside the counter, written under the mutex, the locked mode's intent record: which
    /// participant is updating, the counter before and its `done` after. A worker killed inside
    /// the critical section leaves it set, and the next locker (EOWNERDEAD) settles whether the
    /// update landed, so the dead worker's count, and its replacement's start, are exact. The
    /// values are stored before the marker (`pendingParticipant`), so that a marker that is set
    /// always comes with its own values, never with the previous holder's.
    typealias Area = pool_counter_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> CounterJob {
        var reader = try ParameterReader(parameters)
        let defaults = CounterParameters()
        let mode = try reader.choice("mode", default: defaults.mode)
        let workers = try reader.int("workers", default: defaults.workers, in: 1...JobLimits.maxWorkerCount)
        let iterations = try reader.int("iterations", default: defaults.iterations, in: 1...limits.maxIterations)
        let start = try reader.int("start", default: defaults.start, in: -(1 << 52)...(1 << 52))
        let split = try reader.bool("split", default: defaults.split)
        try reader.finish(kind: Self.name)
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        if split && workers % 2 != 0 {
            throw PoolError.invalidParameter("workers", "split needs an even number of workers (half add, half subtract), not \(workers); pass --no-split for all to add")
        }
        let job = CounterJob(settings: CounterParameters(mode: mode, workers: workers, iterations: iterations, start: start, split: split))
        if mode == .unsafe {
            let most = job.operationsByDirection.max() ?? 0
            guard most <= UnsafeTally.limit else {
                throw PoolError.invalidParameter("iterations", "unsafe mode counts at most \(UnsafeTally.limit) updates in each direction (it tallies them in one 64-bit word), not \(most); pass fewer --iterations or --workers")
            }
        }
        return job
    }

    /// Updates asked for in all: adding, then subtracting.
    var operationsByDirection: [Int] {
        var totals = [0, 0]
        for index in 0..<workers {
            let share = Self.share(participant: index, of: workers, iterations: settings.iterations, split: settings.split)
            totals[share.delta > 0 ? 0 : 1] += share.operations
        }
        return totals
    }

    /// In `unsafe` mode the shared word holds two tallies, the updates that landed: additions in
    /// its upper half, subtractions in its lower half. A worker adds 1 << 32 or 1 with the same
    /// separate load and store, so the race is the notebook's, the counter is `start + up - down`
    /// under any interleaving, and each lost update is known to be an addition or a subtraction
    /// (with --split, one of each would cancel out in the counter alone).
    enum UnsafeTally {
        static let limit = Int(UInt32.max)
        static func step(delta: Int64) -> Int64 { delta > 0 ? 1 << 32 : 1 }
        static func split(_ word: Int64) -> (up: Int, down: Int) {
            (Int(UInt64(bitPattern: word) >> 32), Int(UInt64(bitPattern: word) & 0xFFFF_FFFF))
        }
    }

    var parameters: JSONValue { JSONValue(reporting: settings) }

    var totalWork: Int { (0..<workers).reduce(0) { $0 + Self.share(participant: $1, of: workers, iterations: settings.iterations, split: settings.split).operations } }

    /// What participant `index` does: with split, the first half adds and the second half subtracts,
    /// the last of all once more.
    static func share(participant index: Int, of count: Int, iterations: Int, split: Bool) -> (delta: Int64, operations: Int) {
        guard split else { return (1, iterations) }
        let delta: Int64 = index < count / 2 ? 1 : -1
        return (delta, index == count - 1 ? iterations + 1 : iterations)
    }

    var kindAreaSize: Int { MemoryLayout<Area>.size }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = Self.area(of: segment)
        area.pointee.mode = Self.modeCode(settings.mode)
        area.pointee.split = settings.split ? 1 : 0
        area.pointee.iterations = Int64(settings.iterations)
        area.pointee.counter = settings.mode == .unsafe ? 0 : Int64(settings.start)
        area.pointee.start = Int64(settings.start)
        if settings.mode == .locked { try segment.initializeMutex(area.field(\.mutex)) }
    }

    /// A dead worker's share is finished by its replacement. The count is exact in `locked` mode
    /// (the intent record settles the update in flight); in `atomic` and `unsafe` mode the dead
    /// worker's last unpublished chunk is uncounted, which the result shows as a counter off
    /// `expected` (in `atomic` mode as lost updates; `unsafe` mode's tally tells them apart).
    var resumesAfterWorkerDeath: Bool { true }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> CounterResult {
        let area = Self.area(of: segment)
        // Every participant has ended, so nobody holds the mutex but perhaps a dead worker: settle
        // its intent record as the next locker would have.
        if settings.mode == .locked { Self.settleIntent(segment: segment) }
        let word = Self.counter(in: area).load(ordering: .acquiring)
        let landed = settings.mode == .unsafe ? UnsafeTally.split(word) : nil
        let actual = landed.map { settings.start + $0.up - $0.down } ?? Int(word)
        var expected = settings.start
        var doneByDirection = (up: 0, down: 0)
        var operations = 0
        var recoveries = 0
        var first = Int64.max, last = Int64.min
        var perWorker: [CounterWorkerResult] = []
        for index in 0..<workers {
            let record = segment.participant(index)
            let (delta, _) = Self.share(participant: index, of: workers, iterations: settings.iterations, split: settings.split)
            let done = Int(record.done.load(ordering: .acquiring))
            let started = record.startedNanos.load(ordering: .relaxed)
            let finished = record.finishedNanos.load(ordering: .relaxed)
            expected += Int(delta) * done
            if delta > 0 { doneByDirection.up += done } else { doneByDirection.down += done }
            operations += done
            recoveries += Int(record.extra.load(ordering: .relaxed))
            if started > 0 { first = min(first, started) }
            if finished > 0 { last = max(last, finished) }
            perWorker.append(CounterWorkerResult(
                slot: Int(record.slot.load(ordering: .relaxed)), pid: Int(record.pid.load(ordering: .relaxed)),
                delta: Int(delta), operations: done,
                durationSeconds: finished > started && started > 0 ? Double(finished - started) / 1e9 : 0))
        }
        let duration = last > first ? Double(last - first) / 1e9 : 0
        // A tally above the counted updates is a dead worker's last chunk, done but not counted.
        let lostByDirection = landed.map { (up: max(0, doneByDirection.up - $0.up), down: max(0, doneByDirection.down - $0.down)) }
        return CounterResult(
            mode: settings.mode, start: settings.start, expected: expected, actual: actual,
            lost: lostByDirection.map { $0.up + $0.down } ?? abs(expected - actual),
            lostIncrements: lostByDirection?.up, lostDecrements: lostByDirection?.down,
            operations: operations, durationSeconds: duration,
            opsPerSecond: duration > 0 ? Double(operations) / duration : 0,
            lockRecoveries: recoveries, workers: perWorker)
    }

    static func modeCode(_ mode: CounterMode) -> UInt32 {
        switch mode {
        case .unsafe: return 0
        case .locked: return 1
        case .atomic: return 2
        }
    }

    static func counter(in area: UnsafeMutablePointer<Area>) -> UnsafeAtomic<Int64> {
        area.atomic(\.counter)
    }
}

extension CounterJob {
    /// Work is done in chunks; between chunks the worker publishes progress and checks for
    /// cancellation, so the per-update path is just the update itself.
    static let chunk = 16_384

    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let segment = context.segment, participant = context.participant, heartbeat = context.record
        let area = Self.area(of: segment)
        let modeCode = area.pointee.mode
        let split = area.pointee.split != 0
        let iterations = Int(area.pointee.iterations)
        let (delta, operations) = share(participant: participant, of: segment.participants, iterations: iterations, split: split)
        let counter = Self.counter(in: area)
        let mutex = RobustMutex(area.field(\.mutex))
        let record = segment.participant(participant)

        // Unsafe mode races on CPUs of their own: two workers the scheduler put on one CPU would
        // take turns, a time slice each, and never interleave their loads and stores.
        let pace = modeCode == 0 && segment.participants <= JobSegment.onlineCPUs
        var affinity = pool_cpu_mask()
        let pinned = pace && pool_pin_to_nth_cpu(Int32(participant), &affinity) == 0
        defer { if pinned { _ = pool_restore_affinity(&affinity) } }
        guard segment.arriveAndWaitForAll(beating: heartbeat, participant: participant) else { return .cancelled }
        var done = 0
        if context.isReplacement {
            // Resume where the dead worker stopped. Under the lock, so that its update in flight is
            // settled first (this may be the EOWNERDEAD locker).
            if modeCode == 1 {
                let rc = lock(mutex, segment: segment, record: record)
                guard rc == 0 else { return lockFailed(rc, context) }
                done = Int(record.done.load(ordering: .relaxed))
                mutex.unlock()
            } else {
                done = Int(record.done.load(ordering: .relaxed))
            }
        } else {
            record.startedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed)
        }
        defer {
            record.finishedNanos.store(MonotonicClock.nanoseconds, ordering: .relaxed)
            record.done.store(Int64(done), ordering: .releasing)
        }
        let pendingParticipant = area.atomic(\.pendingParticipant)
        let pendingBefore = area.atomic(\.pendingBefore)
        let pendingDone = area.atomic(\.pendingDone)
        let me = Int64(participant + 1)
        let fault = LockFault(update: participant == 0 ? context.faults.dieHoldingLockAfter ?? -1 : -1,
                              step: context.faults.dieHoldingLockAt)
        while done < operations {
            let count = min(chunk, operations - done)
            switch modeCode {
            case 0:
                if pace { keepAbreast(segment: segment, participant: participant, done: done, split: split, iterations: iterations) }
                let step = UnsafeTally.step(delta: delta)
                for _ in 0..<count {
                    // The race the notebook shows: another worker's store can land between these two.
                    let value = counter.load(ordering: .relaxed)
                    counter.store(value &+ step, ordering: .relaxed)
                }
                done += count
            case 1:
                for _ in 0..<count {
                    let rc = lock(mutex, segment: segment, record: record)
                    guard rc == 0 else { return lockFailed(rc, context) }
                    let dying = done == fault.update
                    fault.reached(.locked, dying)
                    // The intent's values, then its marker, then the update, then the count, then
                    // clear the marker: the releasing stores keep that order for whoever settles a
                    // death (a marker is never seen with another update's values).
                    let before = counter.load(ordering: .relaxed)
                    pendingBefore.store(before, ordering: .relaxed)
                    fault.reached(.intentBefore, dying)
                    pendingDone.store(Int64(done + 1), ordering: .relaxed)
                    fault.reached(.intentDone, dying)
                    pendingParticipant.store(me, ordering: .releasing)
                    fault.reached(.intentMarked, dying)
                    counter.store(before &+ delta, ordering: .releasing)
                    fault.reached(.counter, dying)
                    done += 1
                    record.done.store(Int64(done), ordering: .releasing)
                    fault.reached(.count, dying)
                    pendingParticipant.store(0, ordering: .releasing)
                    fault.reached(.intentCleared, dying)
                    mutex.unlock()
                }
            default:
                for _ in 0..<count { counter.wrappingIncrement(by: delta, ordering: .relaxed) }
                done += count
            }
            record.done.store(Int64(done), ordering: .relaxed)
            heartbeat.beat()
            if segment.isCancelled { return .cancelled }
        }
        return .completed
    }

    /// Testing only: participant 0 dies inside the critical section of update `update`, right
    /// after the store `step` names (`--fault die-holding-lock=N@STEP`).
    struct LockFault {
        let update: Int
        let step: FaultInjection.LockStep

        @inline(__always)
        func reached(_ point: FaultInjection.LockStep, _ dying: Bool) {
            if dying && point == step { FaultInjection.die() }
        }
    }

    /// Unsafe mode: waits (spinning, a few milliseconds at most) while another unfinished
    /// participant is more than a chunk behind. The start gate lets the workers leave together, but
    /// on a busy machine the scheduler may still run one alone for its whole share, and then no
    /// update is lost; kept abreast, they race as the notebook's two threads do. (Only with no more
    /// participants than CPUs: otherwise some must wait for a CPU anyway.)
    private static func keepAbreast(segment: JobSegment, participant: Int, done: Int, split: Bool, iterations: Int) {
        let deadline = MonotonicClock.nanoseconds + 5_000_000
        while !segment.isCancelled, MonotonicClock.nanoseconds < deadline {
            let someoneBehind = (0..<segment.participants).contains { other in
                guard other != participant else { return false }
                let theirs = Int(segment.participant(other).done.load(ordering: .relaxed))
                let share = Self.share(participant: other, of: segment.participants, iterations: iterations, split: split).operations
                return theirs < share && theirs + chunk < done
            }
            if !someoneBehind { return }
            pool_cpu_relax()
        }
    }

    /// Takes the job's mutex. After EOWNERDEAD (the holder died inside the critical section) the
    /// mutex was made consistent, and the intent record is settled before anything else happens
    /// under it; the recovery is counted. Returns 0, or the error number of the failed call.
    private static func lock(_ mutex: RobustMutex, segment: JobSegment, record: JobSegment.Participant) -> Int32 {
        do {
            if try mutex.lock() == .recoveredFromDeadOwner {
                settleIntent(segment: segment)
                record.extra.wrappingIncrement(ordering: .relaxed)
            }
            return 0
        } catch {
            return error.errno
        }
    }

    private static func lockFailed(_ rc: Int32, _ context: ParticipantContext) -> WorkerEvent.Outcome {
        context.fail("cannot take the job's mutex: \(String(cString: strerror(rc)))", errno: rc)
    }

    /// Decides whether the update of a worker that died inside the critical section landed (the
    /// counter moved by its delta) and sets that participant's `done` to match, then clears the
    /// record. Called with the mutex held, or by the daemon once every participant has ended.
    static func settleIntent(segment: JobSegment) {
        let area = Self.area(of: segment)
        let pending = area.atomic(\.pendingParticipant)
        let marked = Int(pending.load(ordering: .acquiring))
        guard marked > 0, marked <= segment.participants else { return }
        let participant = marked - 1
        let split = area.pointee.split != 0
        let iterations = Int(area.pointee.iterations)
        let (delta, _) = share(participant: participant, of: segment.participants, iterations: iterations, split: split)
        let before = area.atomic(\.pendingBefore).load(ordering: .relaxed)
        let doneAfter = area.atomic(\.pendingDone).load(ordering: .relaxed)
        let landed = counter(in: area).load(ordering: .relaxed) == before &+ delta
        segment.participant(participant).done.store(landed ? doneAfter : doneAfter - 1, ordering: .relaxed)
        pending.store(0, ordering: .releasing)
    }
}
