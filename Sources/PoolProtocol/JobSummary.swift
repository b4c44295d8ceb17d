/// A job's outcome in one line, as `poolctl jobs` lists it and the daemon's journal record of its
/// end says it ("job 7 (prodcons) succeeded in 1.20s: checksum OK, 1000000 items").
extension JobRecord {
    public var summary: String {
        if let error { return error }
        if let waiting { return waiting }
        if let result = result?.decodeResult(ofKind: kind) { return result.summary }
        if let progress { return "\(progress.done)/\(progress.total)" }
        return ""
    }
}
