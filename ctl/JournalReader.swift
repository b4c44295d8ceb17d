import CSystemd
import Foundation

/// Reads poold's records from the journal through libsystemd's sd_journal API: the same records
/// `journalctl POOLD_JOB_ID=7` shows.
final class JournalReader {
    private var journal: OpaquePointer?

    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        var handle: OpaquePointer?
        let rc = sd_journal_open(&handle, Int32(SD_JOURNAL_LOCAL_ONLY))
        guard rc >= 0, let handle else {
            throw Unavailable(description: "cannot open the journal: \(String(cString: strerror(-rc)))")
        }
        journal = handle
    }

    deinit {
        sd_journal_close(journal)
    }

    /// Whether any journal file exists to read (journald never ran here: nothing to show).
    static var hasJournalFiles: Bool {
        ["/run/log/journal", "/var/log/journal"].contains { directory in
            guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return false }
            return enumerator.contains { ($0 as? String)?.hasSuffix(".journal") == true }
        }
    }

    /// Keeps only records with all of these `FIELD=value` pairs.
    func match(_ matches: [String]) throws {
        for match in matches {
            let rc = match.withCString { sd_journal_add_match(journal, $0, 0) }
            guard rc >= 0 else { throw Unavailable(description: "bad match \(match): \(String(cString: strerror(-rc)))") }
        }
    }

    /// Moves to the first record at or after `date`.
    func seek(to date: Date) {
        sd_journal_seek_realtime_usec(journal, UInt64(max(0, date.timeIntervalSince1970 * 1e6)))
    }

    /// Moves to the last `count` records as the journal stands now, so that a record written
    /// while they are printed comes after them (with `--follow`, -n 0 shows only new ones).
    func seekToLast(_ count: Int) {
        sd_journal_seek_tail(journal)
        // On the last record, or `count` back from it; `read` goes on from there.
        let moved = sd_journal_previous_skip(journal, UInt64(max(count, 1)))
        startsOnCurrent = count > 0 && moved > 0
    }

    /// Whether the record the journal is on is the first to read (after `seekToLast`).
    private var startsOnCurrent = false

    /// Calls `body` with every record's fields, oldest first; with `follow`, then waits for new
    /// ones until `body` returns false or the process is interrupted.
    func read(follow: Bool, _ body: ([String: String]) -> Bool) {
        if startsOnCurrent {
            startsOnCurrent = false
            guard body(currentFields()) else { return }
        }
        while true {
            while sd_journal_next(journal) > 0 {
                guard body(currentFields()) else { return }
            }
            guard follow else { return }
            _ = sd_journal_wait(journal, UInt64.max)
        }
    }

    private func currentFields() -> [String: String] {
        var fields: [String: String] = [:]
        var data: UnsafeRawPointer?
        var length = 0
        sd_journal_restart_data(journal)
        while sd_journal_enumerate_data(journal, &data, &length) > 0, let data {
            let text = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                fields[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
        }
        var usec: UInt64 = 0
        if sd_journal_get_realtime_usec(journal, &usec) >= 0 { fields["__REALTIME_TIMESTAMP"] = String(usec) }
        return fields
    }
}
