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

    /// Every kind's result gets its worker deaths as PoolProtocol's `DeadWorkerRecord`s, in the wire
    /// form the records have always had (numbers stay numbers, even 0; `replaced` a boolean).
    @Test func deadWorkersAreAddedToAResultAsTheirProtocolRecords() throws {
        let result = JSONValue.object(["counter": .number(4)])
        let deaths = [Job.DeadWorker(participant: 0, slot: 1, pid: 4242, exit: "killed by SIGKILL", replaced: true),
                      Job.DeadWorker(participant: 1, slot: 0, pid: 4243, exit: "exited with status 3", replaced: false)]
        let added = result.adding(deadWorkers: deaths)
        #expect(added == .object([
            "counter": .number(4),
            "deadWorkers": .array([
                .object(["participant": .number(0), "slot": .number(1), "pid": .number(4242), "exit": .string("killed by SIGKILL"),
                         "replaced": .bool(true)]),
                .object(["participant": .number(1), "slot": .number(0), "pid": .number(4243), "exit": .string("exited with status 3"),
                         "replaced": .bool(false)]),
            ]),
        ]))
        #expect(try added.decode(DeadWorkersOfJob.self).deadWorkers?.map(\.pid) == [4242, 4243])
        #expect(result.adding(deadWorkers: []) == result)
    }
}
