import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `prodcons --transport shm`: the queue as a ring in the job's shared segment, end to end through
/// poolctl and the real daemon, with the same checks as over the message queue (checksums, trace,
/// occupancy, killed workers) and nothing left behind.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ShmProdConsTests {
    private func run(_ daemon: DaemonHarness, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (JobRecord, JSONValue) {
        let run = try daemon.poolctl(arguments: ["--json", "run", "prodcons", "--transport", "shm"] + arguments)
        #expect(run.status == 0, "\(run.stderr)", sourceLocation: sourceLocation)
        let job = try run.json(JobRecord.self)
        #expect(job.state == .succeeded, "\(job)", sourceLocation: sourceLocation)
        #expect(job.parameters["transport"] == .string("shm"), sourceLocation: sourceLocation)
        #expect(daemon.jobObjectsInUse.isEmpty, "the job's segment is unlinked or kept free for reuse, and no queue was made",
                sourceLocation: sourceLocation)
        return (job, try #require(job.result, sourceLocation: sourceLocation))
    }

    private func submit(_ daemon: DaemonHarness, _ parameters: [String: JSONValue]) throws -> Int {
        var parameters = parameters
        parameters["transport"] = .string("shm")
        return try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                        RunRequest(kind: "prodcons", parameters: .object(parameters), detach: true),
                                        returning: JobReply.self).job.id
    }

    private func number(_ value: JSONValue?) -> Int { value?.intValue ?? -1 }

    private func expectExact(_ result: JSONValue?, items: Int, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result?["checksumOK"] == .bool(true), "\(comment): \(String(describing: result))", sourceLocation: sourceLocation)
        #expect(number(result?["produced"]) == items && number(result?["consumed"]) == items, "\(comment)", sourceLocation: sourceLocation)
        #expect(result?["producedSum"] == result?["consumedSum"], "\(comment)", sourceLocation: sourceLocation)
    }

    private func deadWorkers(_ job: JobRecord) -> [JSONValue] {
        if case .array(let dead)? = job.result?["deadWorkers"] { return dead }
        return []
    }

    @Test func everyItemGoesThroughOnceAtCapacityOneTenAndAThousandWithSeveralProducersAndConsumers() throws {
        let daemon = try DaemonHarness.start(workers: 5)
        defer { try? daemon.stop() }
        for capacity in [1, 10, 1024] {
            for (producers, consumers, batch) in [(1, 1, 1), (2, 3, 1), (3, 2, 4), (2, 2, 16)] {
                let shape = "capacity \(capacity), \(producers)x\(consumers), batch \(batch)"
                let (_, result) = try run(daemon, ["--producers", "\(producers)", "--consumers", "\(consumers)", "--items", "20000",
                                                   "--capacity", "\(capacity)", "--batch", "\(batch)"])
                expectExact(result, items: 20000, shape)
                guard case .array(let consumerEntries)? = result["consumers"], case .array(let producerEntries)? = result["producers"] else {
                    Issue.record("\(shape): no per-worker entries")
                    continue
                }
                #expect(producerEntries.count == producers && consumerEntries.count == consumers, "\(shape)")
                #expect(consumerEntries.compactMap { $0["consumed"]?.intValue }.reduce(0, +) == 20000, "\(shape)")
                #expect((result["itemsPerSecond"]?.doubleValue ?? 0) > 0 && result["latencyMicros"]?["p50"] != nil, "\(shape)")
                guard case .array(let samples)? = result["occupancy"]?["samples"] else {
                    Issue.record("\(shape): no occupancy")
                    continue
                }
                #expect(number(result["occupancy"]?["capacity"]) == capacity)
                #expect(samples.allSatisfy { ($0.doubleValue ?? -1) >= 0 && ($0.doubleValue ?? .infinity) <= Double(capacity) }, "\(shape): \(samples)")
            }
        }
        try daemon.stop()
    }

    @Test func theNotebooksCellOverTheRingTracesEveryPutAndGetWithinCapacity() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // The notebook's settings: 1 producer, 1 consumer, 10 items, capacity 10, random 0..1 s pauses.
        let (job, result) = try run(daemon, ["--trace"])
        #expect(job.parameters["capacity"]?.intValue == 10 && job.parameters["items"]?.intValue == 10)
        let log = job.log ?? []
        let pattern = /^(Produced|Consumed) (\d+) \(queue length = (\d+)\)$/
        let parsed = log.compactMap { try? pattern.wholeMatch(in: $0) }
        #expect(parsed.count == log.count && log.count == 20, "every line has the notebook's form: \(log)")
        #expect(parsed.filter { $0.1 == "Produced" }.count == 10 && parsed.filter { $0.1 == "Consumed" }.count == 10)
        #expect(parsed.allSatisfy { (1...10).contains(Int($0.2)!) && Int($0.3)! <= 10 }, "\(log)")
        let producedSum = parsed.filter { $0.1 == "Produced" }.map { Int($0.2)! }.reduce(0, +)
        let consumedSum = parsed.filter { $0.1 == "Consumed" }.map { Int($0.2)! }.reduce(0, +)
        #expect(producedSum == consumedSum && result["consumedSum"]?.intValue == consumedSum)
        expectExact(result, items: 10, "the notebook's cell")
        try daemon.stop()
    }

    @Test func theRingFillsToItsCapacityBehindASlowConsumerAndNoFurther() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let (job, result) = try run(daemon, ["--items", "40", "--capacity", "4", "--produce-delay", "0", "--consume-delay", "20ms", "--trace"])
        let lengths = (job.log ?? []).compactMap { line -> Int? in
            guard let match = try? /queue length = (\d+)\)$/.firstMatch(in: line) else { return nil }
            return Int(match.1)
        }
        #expect(lengths.count == 80)
        #expect(lengths.max() == 4, "the producer runs ahead until the ring is full, never beyond: \(lengths)")
        #expect(number(result["queueFull"]) > 0, "the producer found it full: \(result)")
        guard case .array(let samples)? = result["occupancy"]?["samples"] else {
            Issue.record("no occupancy: \(result)")
            return
        }
        #expect(samples.contains { $0.doubleValue == 4 } && samples.allSatisfy { ($0.doubleValue ?? 5) <= 4 }, "\(samples)")
        expectExact(result, items: 40, "slow consumer")
        try daemon.stop()
    }

    @Test func aConsumerKilledHoldingASlotIsReplacedAndTheSlotRedelivered() throws {
        // The first consumer dies right after claiming its 10th slot, before it counted it: the slot
        // still says it holds it, and its replacement finds it there. 50,000 slots: however the two
        // consumers share them (on a loaded machine one took 4,980 of 5,000 once), the first one
        // reaches its 10th.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--fault", "die-consuming=10"])
        defer { try? daemon.stop() }
        let id = try submit(daemon, ["producers": .number(1), "consumers": .number(2), "items": .number(200_000), "batch": .number(4),
                                     "capacity": .number(16)])
        let job = try daemon.waitForJob(id)
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        expectExact(job.result, items: 200_000, "killed consumer")
        #expect(number(job.result?["redelivered"]) == 4, "\(String(describing: job.result))")
        let dead = deadWorkers(job)
        #expect(dead.count == 1 && dead.first?["replaced"] == .bool(true) && number(dead.first?["participant"]) == 1, "\(dead)")
        #expect(daemon.log.contains("redelivering 4 items"))
        try daemon.stop()
    }

    @Test func aProducerKilledAfterPublishingButBeforeCountingIsExact() throws {
        // The producer dies between a publish and recording it: its replacement asks the ring
        // whether its last claim was published, and takes the intent as the record.
        let daemon = try DaemonHarness.start(workers: 3, arguments: ["--fault", "die-producing=30"])
        defer { try? daemon.stop() }
        let id = try submit(daemon, ["producers": .number(2), "consumers": .number(1), "items": .number(5_000), "capacity": .number(8)])
        let job = try daemon.waitForJob(id)
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        expectExact(job.result, items: 5_000, "killed producer")
        #expect(number(job.result?["resent"]) == 0 && job.result?["unsettled"] == nil, "\(String(describing: job.result))")
        let dead = deadWorkers(job)
        #expect(dead.count == 1 && number(dead.first?["participant"]) == 0, "\(dead)")
        try daemon.stop()
    }

    @Test func badCapacitiesAndUnknownTransportsAreRefusedSayingWhatIsAccepted() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let zero = try daemon.poolctl("run", "prodcons", "--transport", "shm", "--capacity", "0")
        #expect(zero.status != 0 && zero.stderr.contains("--capacity must be at least 1"), "\(zero.stderr)")
        let unknown = try daemon.poolctl("run", "prodcons", "--transport", "tcp")
        #expect(unknown.status != 0 && unknown.stderr.contains("tcp") && unknown.stderr.contains("'mq'")
                && unknown.stderr.contains("'shm'"), "\(unknown.stderr)")

        // The daemon refuses the same from any client, naming the parameter and the accepted values.
        func refusal(_ parameters: [String: JSONValue], naming field: String) throws -> String {
            let reply = try daemon.client().call(PoolInterface.Method.run.qualifiedName,
                                                 RunRequest(kind: "prodcons", parameters: .object(parameters), detach: true))
            #expect(reply.error == "io.poold.Pool.InvalidParameter" && reply.parameters?["parameter"]?.stringValue == field, "\(reply)")
            return reply.parameters?["reason"]?.stringValue ?? ""
        }
        #expect(try refusal(["transport": .string("tcp")], naming: "transport").contains("must be one of mq, shm"))
        #expect(try refusal(["transport": .string("shm"), "capacity": .number(0)], naming: "capacity").contains("must be from 1"))
        let huge = try refusal(["transport": .string("shm"), "capacity": .number(1_000_000), "batch": .number(1000)], naming: "batch")
        #expect(huge.contains("bytes, above the") && huge.contains("smaller capacity"), "\(huge)")
        #expect(try daemon.status().jobsFinished == 0, "nothing ran")
        #expect(daemon.jobObjectsInUse.isEmpty)

        // And keeps serving.
        let (_, result) = try run(daemon, ["--items", "1000", "--capacity", "100"])
        expectExact(result, items: 1000, "after the refusals")
        try daemon.stop()
    }
}
