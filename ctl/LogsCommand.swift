import ArgumentParser
import Foundation

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show poold's journal records: all of them, one job's, or one worker slot's.",
        discussion: """
            Reads the journal like `journalctl POOLD_JOB_ID=ID` (fields POOLD_JOB_ID, POOLD_JOB_KIND, POOLD_WORKER,
            POOLD_WORKER_PID). poold writes to the journal under systemd, or when journald runs and its stderr is
            not a terminal; run by hand in a terminal it logs to stderr instead. Exits 3 when there is no journal.
            """
    )

    /// `--json` prints one JSON object per record and line; `--socket` is not needed (the journal is read directly).
    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this job's records.")
    var jobID: Int?

    @Option(help: "Only records from this worker slot.")
    var worker: Int?

    @Flag(help: "Keep printing new records as they arrive.")
    var follow = false

    func run() throws {
        guard JournalReader.hasJournalFiles else {
            Output.error("there is no journal to read: no journal files in /run/log/journal or /var/log/journal (is systemd-journald running?). Without journald, poold logs to its stderr.")
            throw Outcome.unreachable.exitCode
        }
        let reader: JournalReader
        do {
            reader = try JournalReader()
        } catch {
            Output.error("\(error)")
            throw Outcome.unreachable.exitCode
        }
        var matches = ["SYSLOG_IDENTIFIER=poold"]
        if let jobID { matches.append("POOLD_JOB_ID=\(jobID)") }
        if let worker { matches.append("POOLD_WORKER=\(worker)") }
        try reader.match(matches)
        var printed = 0
        reader.read(follow: follow) { fields in
            printed += 1
            if global.json {
                Output.json(fields, pretty: false)
            } else {
                Output.line(Self.format(fields))
            }
            return true
        }
        if printed == 0 && !global.json {
            Output.info("no records" + (jobID.map { " for job \($0)" } ?? "") + (worker.map { " from slot \($0)" } ?? ""))
        }
    }

    /// `2026-11-26T16:47:52.715Z poold[123] (worker-1) I'm the task 3`
    static func format(_ fields: [String: String]) -> String {
        let time = fields["__REALTIME_TIMESTAMP"].flatMap(Double.init).map {
            Date(timeIntervalSince1970: $0 / 1e6).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        } ?? "-"
        let source = fields["POOLD_WORKER"].map { "(worker-\($0)) " } ?? ""
        return "\(time) poold[\(fields["_PID"] ?? "?")] \(source)\(fields["MESSAGE"] ?? "")"
    }
}
