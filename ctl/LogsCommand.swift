import ArgumentParser
import Foundation
import PoolProtocol

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the journal records of the daemon behind --socket: all, one job's, or one worker slot's.",
        discussion: """
            Reads the journal as `journalctl POOLD_INSTANCE=... POOLD_JOB_ID=ID` does: every record of the daemon \
            and its workers carries the pool's identity (POOLD_INSTANCE, shown by `poolctl status --json`; the same \
            across restarts on one state directory), so two daemons in one journal are told apart. poold writes to \
            the journal under systemd, or when journald runs and its stderr is not a terminal; run by hand in a \
            terminal it logs to stderr instead. Exits 3 when there is no journal or no daemon to ask.

            Examples:
              poolctl logs 7
              poolctl logs -n 20 --follow
              poolctl logs --worker 1 --since 10m
              poolctl logs --instance 4f1c2a9e0b7d3358 3
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this job's records.")
    var jobID: Int?

    @Option(parsing: .unconditional, help: "Only records from this worker slot.")
    var worker: Int?

    @Option(name: [.customShort("n"), .customLong("lines")], parsing: .unconditional, help: "Only the last N records (then, with --follow, new ones).")
    var lines: Int?

    @Option(help: "Only records since then: a time ago (30s, 10m, 2h, 1d) or a time (2026-12-01 09:30, 2026-12-01T09:30:00Z).")
    var since: String?

    @Option(help: "The records of this pool identity (POOLD_INSTANCE) instead of the running daemon's: for a daemon that has stopped.")
    var instance: String?

    @Flag(help: "Keep printing new records as they arrive.")
    var follow = false

    func validate() throws {
        if let lines, lines < 0 { throw ValidationError("-n/--lines must be 0 or more, not \(lines)") }
        if let since, Self.time(since, now: Date()) == nil {
            throw ValidationError("--since must be a time ago (30s, 10m, 2h, 1d) or a time (2026-12-01 09:30), not '\(since)'")
        }
    }

    func run() throws {
        guard JournalReader.hasJournalFiles else {
            Output.error("there is no journal to read: no journal files in /run/log/journal or /var/log/journal (is systemd-journald running?). Without journald, poold logs to its stderr.")
            throw Outcome.unreachable.exitCode
        }
        let pool = try instance ?? runningInstance()
        let reader: JournalReader
        do {
            reader = try JournalReader()
        } catch {
            Output.error("\(error)")
            throw Outcome.unreachable.exitCode
        }
        var matches = ["POOLD_INSTANCE=\(pool)"]
        if let jobID { matches.append("POOLD_JOB_ID=\(jobID)") }
        if let worker { matches.append("POOLD_WORKER=\(worker)") }
        try reader.match(matches)
        let start = since.flatMap { Self.time($0, now: Date()) }
        if let lines {
            reader.seekToLast(lines)
        } else if let start {
            reader.seek(to: start)
        }
        var printed = 0
        reader.read(follow: follow) { fields in
            if let start, let usec = fields["__REALTIME_TIMESTAMP"].flatMap(Double.init), usec < start.timeIntervalSince1970 * 1e6 {
                return true
            }
            printed += 1
            if global.json { Output.json(fields, pretty: false) } else { Output.line(Self.format(fields)) }
            return true
        }
        if printed == 0 && !global.json {
            Output.info("no records" + (jobID.map { " for job \($0)" } ?? "") + (worker.map { " from slot \($0)" } ?? "")
                        + " of the pool \(pool)" + (since.map { " since \($0)" } ?? ""))
            if let jobID {
                Output.info("  a job that ran while more than job-log-rate jobs a second did is not logged unless it failed; `poolctl job \(jobID)` shows its record")
            }
        }
    }

    /// Asks the daemon behind --socket for its identity.
    private func runningInstance() throws -> String {
        let client: VarlinkClient
        do {
            client = try global.connect()
        } catch {
            Output.info("  poolctl logs shows the records of the daemon behind --socket; for one that has stopped, give its identity: --instance ID (its records' POOLD_INSTANCE), or read `journalctl SYSLOG_IDENTIFIER=poold`")
            throw error
        }
        let status = try global.call(client, .status, returning: StatusReply.self)
        guard let instance = status.instance else {
            Output.error("the daemon at \(global.socketPath) (poold \(status.version)) does not say which records are its own")
            throw Outcome.refused.exitCode
        }
        return instance
    }

    /// `2026-11-26T16:47:52.715Z poold[123] job 5: slot 1: I'm the task 3` (a worker's message
    /// names its slot itself).
    static func format(_ fields: [String: String]) -> String {
        let time = fields["__REALTIME_TIMESTAMP"].flatMap(Double.init).map {
            Date(timeIntervalSince1970: $0 / 1e6).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        } ?? "-"
        let job = fields["POOLD_JOB_ID"].map { " job \($0):" } ?? ""
        return "\(time) poold[\(fields["_PID"] ?? "?")]\(job) \(fields["MESSAGE"] ?? "")"
    }

    /// `--since`: an amount of time ago, or a time of day on a date (local time unless it says otherwise).
    static func time(_ text: String, now: Date) -> Date? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let unit = text.last, let scale = units[unit], let amount = Double(text.dropLast()), amount >= 0 {
            return now.addingTimeInterval(-amount * scale)
        }
        if let instant = try? Date(text, strategy: .iso8601) { return instant }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .current
        for format in ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
