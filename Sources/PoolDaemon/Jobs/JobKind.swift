import PoolProtocol

/// A job kind as the daemon knows it: a plan whose result is the kind's type in PoolProtocol
/// (which poolctl decodes), read from the segment once the participants have ended.
protocol JobKind: JobPlan {
    /// Not `Result`, which would hide Swift's in every kind.
    associatedtype TypedResult: JobResult

    /// The result, read from the segment after the participants have ended (also when the job
    /// failed or was cancelled: what was done until then).
    func typedResult(from segment: JobSegment, monitor: (any JobMonitor)?) -> TypedResult
}

extension JobKind {
    func result(from segment: JobSegment, monitor: (any JobMonitor)?) -> JSONValue {
        JSONValue(reporting: typedResult(from: segment, monitor: monitor))
    }
}

extension JSONValue {
    /// The JSON form of one of the daemon's own Codable values (plain numbers, strings and
    /// lists, which always encode).
    init(reporting value: some Encodable) {
        self = (try? JSONValue(encoding: value)) ?? .null
    }
}
