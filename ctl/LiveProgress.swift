import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A job's progress as one line: a bar, the percentage, done of total, the rate and the time left,
/// then what the kind shows live (prodcons its queue, event its waiters, append its string). Keeps
/// the last seconds' samples for the rate.
struct ProgressMeter {
    private var samples: [(seconds: Double, done: Int)] = []
    /// The rate is taken over this many seconds: long enough to smooth chunked progress, short
    /// enough to follow a change of pace.
    static let rateWindow = 5.0

    mutating func note(_ progress: JobProgress, at seconds: Double = ProcessInfo.processInfo.systemUptime) {
        samples.append((seconds, progress.done))
        while samples.count > 2, seconds - samples[0].seconds > Self.rateWindow { samples.removeFirst() }
    }

    /// Units of work per second, once there is enough to tell.
    var rate: Double? {
        guard let first = samples.first, let last = samples.last, last.seconds - first.seconds >= 0.2 else { return nil }
        return Double(max(0, last.done - first.done)) / (last.seconds - first.seconds)
    }

    /// The line for `job`, at most `width` characters wide; `terminal` colours it.
    func line(for job: JobRecord, width: Int, terminal: Terminal? = nil) -> String {
        guard let progress = job.progress else { return "" }
        let fraction = progress.total > 0 ? min(1, Double(progress.done) / Double(progress.total)) : 0
        let percent = String(format: "%3.0f%%", (fraction * 100).rounded(.down))
        var figures = ["\(Self.compact(progress.done))/\(Self.compact(progress.total))"]
        if let rate {
            figures.append(Output.rate(rate) + "/s")
            if rate > 0, progress.done < progress.total {
                figures.append(Self.clock(Double(progress.total - progress.done) / rate) + " left")
            }
        }
        figures += PoolctlJobKinds.kind(named: job.kind)?.liveFigures(progress, parameters: job.parameters) ?? []
        let plain = figures.joined(separator: "  ")
        // The bar takes what is left, up to 30 cells (20 beside a growing string).
        var room = width - percent.count - plain.count - 2
        let barWidth = min(progress.text == nil ? 30 : 20, room - 1)
        var line = ""
        if barWidth >= 5 {
            let filled = Int((Double(barWidth) * fraction).rounded(.down))
            let bar = String(repeating: "█", count: filled)
            let rest = String(repeating: "░", count: barWidth - filled)
            line = (terminal?.styled(bar, "32") ?? bar) + (terminal?.styled(rest, "2") ?? rest) + " "
            room -= barWidth + 1
        }
        line += (terminal?.styled(percent, "1") ?? percent) + "  " + plain
        if let text = progress.text, room >= 6 {
            let shown = room - 2
            line += "  " + (text.count <= shown ? text : "…" + text.suffix(shown - 1))
        }
        return line
    }

    /// 1234, 42.0k, 2.00M.
    static func compact(_ count: Int) -> String {
        count < 10_000 ? String(count) : Output.rate(Double(count))
    }

    /// 7s, 1m05s, 2h03m.
    static func clock(_ seconds: Double) -> String {
        let whole = Int(min(seconds, 360_000).rounded(.up))
        switch whole {
        case ..<60: return "\(whole)s"
        case ..<3600: return String(format: "%dm%02ds", whole / 60, whole % 60)
        default: return String(format: "%dh%02dm", whole / 3600, whole % 3600 / 60)
        }
    }
}

/// A followed job's live progress on a terminal: one line at the bottom of the output, redrawn in
/// place (carriage return, the line, erase to its end) on every record the daemon pushes. The line
/// is kept narrower than the window, so that it never wraps.
final class LiveJobProgress {
    private let terminal: Terminal
    private var meter = ProgressMeter()
    private var job: JobRecord?
    private var shown = false

    /// On stderr when it is a terminal (so that stdout may go to a file); nil otherwise.
    init?() {
        guard let terminal = Terminal(descriptor: STDERR_FILENO) else { return nil }
        self.terminal = terminal
    }

    func update(_ job: JobRecord) {
        guard job.state == .running, let progress = job.progress else { return }
        meter.note(progress)
        self.job = job
        draw()
    }

    /// Takes the line away, before other output or at the end.
    func clear() {
        guard shown else { return }
        terminal.write("\r" + Terminal.eraseLine)
        shown = false
    }

    /// Prints other output above the line.
    func above(_ body: () -> Void) {
        let wasShown = shown
        clear()
        body()
        if wasShown { draw() }
    }

    private func draw() {
        guard let job else { return }
        terminal.write("\r" + meter.line(for: job, width: terminal.size.columns - 1, terminal: terminal) + Terminal.eraseLine)
        shown = true
    }
}

/// What a followed job shows as it goes (`run`, `job --follow`): its state changes and its log
/// lines (a trace) as they arrive, and on a terminal its live progress below them.
final class JobStreamPrinter {
    let live: LiveJobProgress?
    private var lastState: JobState?
    private var linesShown = 0

    init(live: LiveJobProgress?) {
        self.live = live
    }

    func show(_ job: JobRecord) {
        let printNews = { [self] in
            if job.state != lastState, !job.state.isFinished {
                let slots = job.slots.isEmpty ? "" : " on slots \(job.slots.map(String.init).joined(separator: ", "))"
                Output.info("job \(job.id) \(job.state.rawValue)\(slots)")
            }
            lastState = job.state
            // The job's log (a trace) as it grows: a running job's record has its latest lines,
            // the first of them `logOffset` lines in; the final record has it whole.
            let lines = job.log ?? [], offset = job.logOffset ?? 0
            if offset > linesShown {
                Output.line("... \(offset - linesShown) lines went by faster than they were shown (poolctl logs \(job.id) has them)")
                linesShown = offset
            }
            for line in lines.dropFirst(linesShown - offset) { Output.line(line) }
            linesShown = max(linesShown, offset + lines.count)
        }
        let hasNews = job.state != lastState || (job.logOffset ?? 0) + (job.log?.count ?? 0) > linesShown
        if let live, hasNews { live.above(printNews) } else if hasNews { printNews() }
        if job.state.isFinished { live?.clear() } else { live?.update(job) }
    }
}
