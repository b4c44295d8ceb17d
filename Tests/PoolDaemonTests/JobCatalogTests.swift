@testable import PoolDaemon
import PoolProtocol
import Testing

/// The one list of job kinds: each kind's name (its PoolProtocol result type's), its segment tag,
/// its validation and its reported parameters agree with each other and with PoolProtocol's list.
struct JobCatalogTests {
    @Test func namesAndCodesAreOnePerKindAndPoolProtocolListsTheSameKinds() {
        let kinds = JobCatalog.kinds
        #expect(Set(kinds.map { $0.code }).count == kinds.count && !kinds.contains { $0.code == 0 })
        #expect(kinds.map { $0.name } == JobResults.all.map { $0.kind })
        for kind in kinds {
            #expect(JobCatalog.kind(named: kind.name) == kind && JobCatalog.kind(code: kind.code) == kind)
        }
        #expect(throws: PoolError.invalidParameter("kind", "unknown job kind 'frobnicate'; this daemon runs: counter, prodcons, event, tasks, append, lockcell")) {
            try JobCatalog.plan(kind: "frobnicate", parameters: nil, limits: JobLimits(poolSize: 2))
        }
    }

    /// A job's reported parameters (its kind's PoolProtocol parameters type, defaults filled in)
    /// are parameters the kind accepts, and plan the same job again.
    @Test func everyKindsReportedParametersPlanTheSameJob() throws {
        for kind in JobCatalog.kinds {
            let plan = try JobCatalog.plan(kind: kind.name, parameters: nil, limits: JobLimits(poolSize: 2))
            #expect(ObjectIdentifier(plan.kind) == ObjectIdentifier(kind))
            let again = try JobCatalog.plan(kind: kind.name, parameters: plan.parameters, limits: JobLimits(poolSize: 2))
            #expect(again.parameters == plan.parameters, "\(kind.name): \(plan.parameters) became \(again.parameters)")
        }
    }
}
