/// A job's outcome in one line, as `poolctl jobs` lists it and the daemon's journal record of its
/// end says it ("job 7 (prodcons) succeeded in 1.20s: checksum OK, 1000000 items").
extension JobRecord {
    public var summary: String {
        if let error { return error }
        if let waiting { return waiting }
        if kind == "counter", let result = try? result?.decode(CounterResult.self) {
            return "\(result.mode.rawValue): counter = \(result.actual), expected \(result.expected), lost \(result.lost)"
        }
        if kind == "prodcons", let result {
            return "\(Self.checksumVerdict(result)), \(result["consumed"]?.intValue ?? 0) items"
        }
        if kind == "tasks", let result {
            return "\(result["ran"]?.intValue ?? 0) of \(result["count"]?.intValue ?? 0) tasks ran"
        }
        if kind == "event", case .array(let waiters)? = result?["waiters"] {
            let received = waiters.filter { $0["received"] == .bool(true) }.count
            return "\(received) of \(waiters.count) waiters received the event"
        }
        if kind == "lockcell", let result {
            return "Counter: \(result["counter"]?.intValue ?? 0), expected \(result["expected"]?.intValue ?? 0)"
        }
        if kind == "append", let result {
            return result["text"]?.stringValue ?? "private copies; daemon's copy empty"
        }
        if let progress { return "\(progress.done)/\(progress.total)" }
        return ""
    }

    /// What the sums say. A job stopped early (cancelled, timed out, failed) has items that never
    /// got through; that is an incomplete run, not a checksum mismatch, unless the items that did
    /// get through disagree.
    public static func checksumVerdict(_ result: JSONValue) -> String {
        if result["checksumOK"] == .bool(true) { return "checksum OK" }
        let items = result["items"]?.intValue ?? 0
        let produced = result["produced"]?.intValue ?? 0, consumed = result["consumed"]?.intValue ?? 0
        let sumsAgree = result["producedSum"] == result["consumedSum"]
        if consumed < items && consumed <= produced {
            let pending = produced - consumed
            let agreement = pending == 0 ? (sumsAgree ? ", checksum OK for those" : ", checksum MISMATCH for those") : ""
            return "incomplete: \(consumed) of \(items) consumed, \(pending) produced but not consumed\(agreement)"
        }
        return "checksum MISMATCH"
    }
}
