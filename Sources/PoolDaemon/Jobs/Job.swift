import Foundation
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A job as the scheduler tracks it, from submission to its final record.
final class Job {
    let id: Int
    let plan: any JobPlan
    var state: JobState = .queued
    /// Slots running it, in participant order.
    var slots: [Int] = []
    var segment: JobSegment?
    /// Participants whose part has ended (finished, cancelled, failed or died).
    var ended: Set<Int> = []
    /// Why the job failed, when a participant failed or died.
    var failure: String?
    /// Why the job is being cancelled.
    var cancelReason: String?
    /// A detached job starts only once its record is in the job history (it is acknowledged then).
    var awaitingRecord = false
    let submittedAt = Date()
    var startedAt: Date? { didSet { startedText = startedAt.map(Self.timestamp) } }
    var finishedAt: Date? { didSet { finishedText = finishedAt.map(Self.timestamp) } }
    /// The times as records show them, formatted once: a record is made for every change a
    /// client or the history is told of, and ISO 8601 formatting is not cheap.
    private lazy var submittedText = Self.timestamp(submittedAt)
    private var startedText: String?
    private var finishedText: String?
    var result: JSONValue?
    /// The result's summary, kept from the typed result when the job finished (see `JobPlan.result`).
    var resultSummary: String?
    /// Clients waiting for the job: called on every change, last with a finished record.
    var watchers: [Int: (JobRecord) -> Void] = [:]
    var nextWatcherID = 1
    var cancelTimer: Scheduled<Void>?
    var monitor: (any JobMonitor)?
    var monitorTimer: Scheduled<Void>?
    /// Log lines kept once the segment is gone (bounded: KeptJobLog).
    var finalLog: [String]?
    /// Whether the job's start, end and workers' info lines are logged (JobLogLimiter), decided
    /// as it starts.
    var linesLogged: Bool?
    var progressTimer: Scheduled<Void>?
    /// The longest the job may run (`Run`'s `timeout`), and the timer that enforces it.
    var timeout: Duration?
    var timeoutTimer: Scheduled<Void>?
    /// Workers that died while running a part of this job, in order.
    var deadWorkers: [DeadWorker] = []
    /// Replacements so far, per participant.
    var replacements: [Int: Int] = [:]
    /// While queued: what the job waits for, as the scheduler last saw it.
    var waiting: String?
    /// Jobs submitted after this one that started before it (see `JobScheduler.dispatch`).
    var overtaken = 0

    struct DeadWorker {
        let participant: Int
        let slot: Int
        let pid: Int32
        let exit: String
        /// Whether its part went to a replacement (else the job failed).
        var replaced: Bool
    }

    /// The plan's parameters as records report them, made once: a plan makes them afresh (through
    /// JSON) each time it is asked, and every change of the job makes a record.
    let parameters: JSONValue

    init(id: Int, plan: any JobPlan) {
        self.id = id
        self.plan = plan
        parameters = plan.parameters
    }

    /// Work done so far, read from the participants' records in shared memory.
    var progress: JobProgress? {
        guard let segment else { return state == .queued ? JobProgress(done: 0, total: plan.totalWork) : nil }
        var done = 0
        for index in 0..<segment.participants { done += Int(segment.participant(index).done.load(ordering: .relaxed)) }
        var progress = JobProgress(done: done, total: plan.totalWork)
        plan.addLiveFigures(to: &progress, segment: segment, monitor: monitor)
        return progress
    }

    var record: JobRecord { record(includingLog: true) }

    /// Without the log, reading a running job's log (a trace) from shared memory is skipped.
    func record(includingLog: Bool) -> JobRecord {
        var record = JobRecord(id: id, kind: plan.kind.name, state: state, parameters: parameters, slots: slots,
                               submittedAt: submittedText, startedAt: startedText, finishedAt: finishedText,
                               progress: state == .running ? progress : nil,
                               result: result, error: failure ?? (state == .cancelled ? cancelReason : nil),
                               waiting: state == .queued ? waiting : nil)
        if includingLog { (record.log, record.logOffset) = log }
        return record
    }

    /// A running job's latest lines: every progress reply repeating the whole log so far would send
    /// a trace's lines over and over (hundreds of megabytes for a long one).
    static let runningLogWindow = 1000

    /// The log as a record shows it, and the number of lines left out before it.
    var log: (lines: [String]?, offset: Int?) {
        if let finalLog { return (finalLog.isEmpty ? nil : finalLog, nil) }
        guard let segment else { return (nil, nil) }
        let start = max(0, plan.logLineCount(segment: segment) - Self.runningLogWindow)
        // Workers write on while the lines are read: lines written after the count are left for
        // the next record, so the window stays at most its size.
        let lines = Array(plan.logLines(segment: segment, from: start).prefix(Self.runningLogWindow))
        return (lines.isEmpty ? nil : lines, start > 0 ? start : nil)
    }

    /// `2026-12-01T14:47:15.486Z`: what `Date.ISO8601FormatStyle(includingFractionalSeconds: true)`
    /// writes, from gmtime_r; the style's formatter cost a job's records a few microseconds. Its
    /// milliseconds are those of the seconds since 2001 (Foundation's reference date), truncated,
    /// which is not always what the seconds since 1970 would give.
    static func timestamp(_ date: Date) -> String {
        let reference = date.timeIntervalSinceReferenceDate
        let whole = reference.rounded(.down)
        guard reference.isFinite, whole >= 0, whole < 1e11 else {
            return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        let millis = min(Int(((reference - whole) * 1000).rounded(.down)), 999)
        var seconds = time_t(Int64(whole) + 978_307_200)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else {
            return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        // Written in place: through an array and a decoding of it, the three timestamps of a job
        // cost a trivial Run 4% of its event loop time.
        return String(unsafeUninitializedCapacity: 24) { text in
            var end = 0
            func field(_ value: Int32, _ width: Int, then separator: Unicode.Scalar) {
                var rest = Int(value)
                for index in stride(from: end + width - 1, through: end, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                text[end + width] = UInt8(ascii: separator)
                end += width + 1
            }
            // The year has four digits: the seconds are below 1e11 since 2001.
            field(parts.tm_year + 1900, 4, then: "-")
            field(parts.tm_mon + 1, 2, then: "-")
            field(parts.tm_mday, 2, then: "T")
            field(parts.tm_hour, 2, then: ":")
            field(parts.tm_min, 2, then: ":")
            field(parts.tm_sec, 2, then: ".")
            field(Int32(millis), 3, then: "Z")
            return end
        }
    }

    @discardableResult
    func addWatcher(_ watcher: @escaping (JobRecord) -> Void) -> Int {
        let id = nextWatcherID
        nextWatcherID += 1
        watchers[id] = watcher
        return id
    }

    /// `fullLog`: the whole log of a job that has just finished, which its record keeps only in
    /// part (KeptJobLog); the clients following it get every line once.
    /// `current`: the record just made for this change, when the caller has one already.
    func notifyWatchers(_ current: JobRecord? = nil, fullLog: [String]? = nil) {
        guard !watchers.isEmpty else { return }
        var current = current ?? record
        if let fullLog, !fullLog.isEmpty { (current.log, current.logOffset) = (fullLog, nil) }
        for watcher in watchers.values { watcher(current) }
        if state.isFinished { watchers.removeAll() }
    }
}
