import Atomics
import CPooldShim
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The notebook's section 2: workers append their character to a string. With shared memory they
/// append to one string in the job's segment, under a lock, and the interleaving shows; with private
/// memory each appends to its own copy (as forked processes do) and the daemon's copy stays empty —
/// "why has `a` not been modified".
struct AppendJob: JobKind {
    struct Writer: Sendable {
        var character: UInt8
        var count: Int
        var interval: Int64
    }

    let writers: [Writer]
    let memory: AppendMemory
    static let code: UInt32 = 5
    var workers: Int { writers.count }
    var totalWork: Int { writers.reduce(0) { $0 + $1.count } }

    /// The kind area, `pool_append_area`, then a `pool_append_writer` per participant, then the
    /// shared string, then the private copies.
    typealias Area = pool_append_area

    static func area(of segment: JobSegment) -> UnsafeMutablePointer<Area> { segment.kindArea.layout(Area.self) }

    static func writers(in area: UnsafeMutablePointer<Area>) -> UnsafeMutablePointer<pool_append_writer> {
        area.end.layout(pool_append_writer.self)
    }

    /// Where the shared string starts, from the start of the area.
    static func textOffset(participants: Int) -> Int {
        MemoryLayout<Area>.size + participants * MemoryLayout<pool_append_writer>.stride
    }

    static func plan(_ parameters: JSONValue?, limits: JobLimits) throws(PoolError) -> AppendJob {
        var reader = try ParameterReader(parameters)
        let workers = try reader.int("workers", default: 2, in: 1...JobLimits.maxWorkerCount)
        // Before anything is made per worker: a count no pool has is refused, not allocated for.
        if workers > limits.poolSize { throw limits.poolTooSmall(requested: workers) }
        // The notebook's two writers ('o' 10 times every 1s, 'O' 20 times every 600ms), repeated
        // for as many workers as asked for when the lists are not given.
        func notebook<T>(_ pair: [T]) -> [T] { (0..<workers).map { pair[$0 % 2] } }
        let characters = Array(try reader.string("chars", default: String(decoding: notebook(Array("oO".utf8)), as: UTF8.self)).utf8)
        let counts = try reader.list("counts") ?? notebook([.number(10), .number(20)])
        let intervals = try reader.list("intervals") ?? notebook([.string("1s"), .string("600ms")])
        let memory = try reader.choice("memory", default: AppendMemory.shared)
        try reader.finish(kind: Self.name)
        guard characters.count == workers || characters.count == 1, characters.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw PoolError.invalidParameter("chars", "must be one printable ASCII character per worker (\(workers)), or one for all")
        }
        func pick<T>(_ list: [T], _ index: Int, _ name: String) throws(PoolError) -> T {
            guard list.count == workers || list.count == 1 else {
                throw PoolError.invalidParameter(name, "must have one value per worker (\(workers)), or one for all")
            }
            return list.count == 1 ? list[0] : list[index]
        }
        var writers: [Writer] = []
        for index in 0..<workers {
            guard let count = try pick(counts, index, "counts").intValue, (0...100_000).contains(count) else {
                throw PoolError.invalidParameter("counts", "each count must be an integer from 0 to 100000")
            }
            let intervalValue = try pick(intervals, index, "intervals")
            let interval: Int64?
            switch intervalValue {
            case .string(let text): interval = DurationText.nanoseconds(text)
            case .number(let millis) where millis >= 0 && millis <= 60_000: interval = Int64(millis * 1e6)
            default: interval = nil
            }
            guard let interval, interval <= 60_000_000_000 else {
                throw PoolError.invalidParameter("intervals", "each interval must be a duration up to 60s, such as 600ms")
            }
            writers.append(Writer(character: try pick(characters, index, "chars"), count: count, interval: interval))
        }
        guard writers.reduce(0, { $0 + $1.count }) <= 1_000_000 else {
            throw PoolError.invalidParameter("counts", "the counts may add up to at most 1000000")
        }
        return AppendJob(writers: writers, memory: memory)
    }

    var parameters: JSONValue {
        JSONValue(reporting: AppendParameters(workers: workers, chars: String(decoding: writers.map(\.character), as: UTF8.self),
                                              counts: writers.map(\.count), intervals: writers.map { DurationText.format($0.interval) },
                                              memory: memory))
    }

    /// The shared string first, then each worker's private copy, so that every process writes
    /// only its own bytes.
    private var textCapacity: Int { totalWork }

    private func copyOffset(_ participant: Int) -> Int {
        Self.textOffset(participants: workers) + textCapacity + writers[..<participant].reduce(0) { $0 + $1.count }
    }

    var kindAreaSize: Int { Self.textOffset(participants: workers) + 2 * textCapacity }

    func fill(_ segment: JobSegment) throws(IPCError) {
        let area = Self.area(of: segment)
        area.pointee.memory = memory == .shared ? 0 : 1
        let entries = Self.writers(in: area)
        for (index, writer) in writers.enumerated() {
            entries[index].character = Int64(writer.character)
            entries[index].count = Int64(writer.count)
            entries[index].interval = writer.interval
            // Where this worker's private copy is reported back to.
            entries[index].copyOffset = Int64(copyOffset(index))
        }
        try segment.initializeMutex(area.field(\.mutex))
    }

    /// The shared string so far. Its writers store each character before the new length, so the
    /// characters up to the length read here are all written.
    func addLiveFigures(to progress: inout JobProgress, segment: JobSegment, monitor: (any JobMonitor)?) {
        guard memory == .shared else { return }
        let area = Self.area(of: segment)
        let length = min(Int(area.pointee.length), textCapacity)
        let shown = min(length, JobProgress.textWindow)
        progress.text = String(decoding: UnsafeRawBufferPointer(start: segment.kindArea + Self.textOffset(participants: workers) + length - shown,
                                                                count: shown), as: UTF8.self)
    }

    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> AppendResult {
        let area = segment.kindArea
        switch memory {
        case .shared:
            let length = min(Int(Self.area(of: segment).pointee.length), textCapacity)
            let text = String(decoding: UnsafeRawBufferPointer(start: area + Self.textOffset(participants: workers), count: length), as: UTF8.self)
            return .shared(text: text, length: length, expectedLength: totalWork)
        case .private:
            let copies = writers.enumerated().map { index, writer in
                let done = min(Int(segment.participant(index).done.load(ordering: .acquiring)), writer.count)
                return AppendCopy(participant: index, slot: Int(segment.participant(index).slot.load(ordering: .relaxed)),
                                  text: String(decoding: UnsafeRawBufferPointer(start: area + copyOffset(index), count: done), as: UTF8.self))
            }
            // The daemon's own `a` stays empty: nobody could append to it, as in the notebook.
            return .private(copies: copies)
        }
    }
}

extension AppendJob {
    static func run(_ context: ParticipantContext) -> WorkerEvent.Outcome {
        let segment = context.segment
        let area = Self.area(of: segment)
        let shared = area.pointee.memory == 0
        let writers = Self.writers(in: area)
        let entry = writers[context.participant]
        let character = UInt8(entry.character)
        let count = Int(entry.count)
        let interval = entry.interval
        let copy = segment.kindArea + Int(entry.copyOffset)
        let text = segment.kindArea + Self.textOffset(participants: segment.participants)
        let capacity = (0..<segment.participants).reduce(0) { $0 + Int(writers[$1].count) }
        let mutex = RobustMutex(area.field(\.mutex))
        let length = area.field(\.length)
        var mine: [UInt8] = []  // the private `a`: this process's own memory
        mine.reserveCapacity(count)
        let symbol = String(UnicodeScalar(character))

        guard segment.arriveAndWaitForAll(beating: context.record, participant: context.participant) else { return .cancelled }
        for done in 1...max(count, 1) where count > 0 {
            if shared {
                do {
                    // A writer that died holding the lock left the string whole: its character
                    // counts only once the length that follows it is stored.
                    if try mutex.lock() == .recoveredFromDeadOwner {
                        context.logger.notice("took over the lock of a writer that died holding it")
                    }
                } catch {
                    return context.fail("cannot take the job's mutex: \(error)", errno: error.errno)
                }
                let before = Int(length.pointee)
                if before < capacity {
                    text.storeBytes(of: character, toByteOffset: before, as: UInt8.self)
                    length.pointee = Int64(before + 1)
                }
                mutex.unlock()
                context.logger.debug("appended \(symbol) (length = \(before + 1))")
            } else {
                mine.append(character)
                context.logger.debug("appended \(symbol) to my own copy (length = \(mine.count))")
            }
            context.mine.done.store(Int64(done), ordering: .releasing)
            context.record.beat()
            if done < count, !segment.pause(nanoseconds: interval, beating: context.record) { break }
        }
        // The private copy is reported back once, after the fact: it never was shared.
        if !shared, !mine.isEmpty { mine.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return segment.isCancelled ? .cancelled : .completed
    }
}
