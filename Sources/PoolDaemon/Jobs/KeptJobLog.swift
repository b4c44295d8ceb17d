/// How much of a finished job's log the daemon keeps in its record (in memory and in the job
/// history). A traced prodcons job has two lines per item, up to 200,000: kept whole for a
/// thousand jobs that would be gigabytes. The clients following the job receive every line once
/// when it ends, and the journal has each of them (`poolctl logs ID`); the record keeps the first
/// and the last lines with a note of what was left out.
enum KeptJobLog {
    static let headLines = 500
    static let tailLines = 500

    static func bounded(_ lines: [String], jobID: Int) -> [String] {
        guard lines.count > headLines + tailLines else { return lines }
        let omitted = lines.count - headLines - tailLines
        return Array(lines.prefix(headLines))
            + ["... \(omitted) lines not kept in the job's record; the journal has them all (poolctl logs \(jobID)) ..."]
            + Array(lines.suffix(tailLines))
    }
}
