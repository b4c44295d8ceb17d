import PoolProtocol

/// The validation a `Run` call's `kind` and `parameters` go through, on its own: what the fuzz
/// tests drive with random JSON. It is the daemon's own path (`JobCatalog.plan`), not a copy.
public enum JobValidation {
    public struct Accepted: Sendable {
        /// The parameters as the job will run (defaults filled in).
        public let parameters: JSONValue
        /// Workers the job occupies at once.
        public let workers: Int
        /// Units of work in all (operations, items, tasks).
        public let totalWork: Int
    }

    /// The job as it would run on a pool of `poolSize` workers, or the error a client would get.
    public static func validate(kind: String, parameters: JSONValue?, poolSize: Int) throws(PoolError) -> Accepted {
        let plan = try JobCatalog.plan(kind: kind, parameters: parameters, limits: JobLimits(poolSize: poolSize))
        return Accepted(parameters: plan.parameters, workers: plan.workers, totalWork: plan.totalWork)
    }
}
