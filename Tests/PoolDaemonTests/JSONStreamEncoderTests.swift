import Foundation
@testable import PoolDaemon
import NIOCore
import PoolProtocol
import Testing

/// Replies are written by `JSONStreamEncoder`: the same JSON as Foundation's encoder, or a fallback.
struct JSONStreamEncoderTests {
    private static func streamed<T: Encodable>(_ value: T) throws -> Any? {
        guard let buffer = try JSONStreamEncoder.encode(value, allocator: ByteBufferAllocator()) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
    }

    private static func foundation<T: Encodable>(_ value: T) throws -> Any {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try JSONSerialization.jsonObject(with: encoder.encode(value), options: [.fragmentsAllowed])
    }

    private static func expectSame<T: Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let streamed = try #require(try Self.streamed(value), sourceLocation: sourceLocation)
        let expected = try Self.foundation(value)
        #expect(NSDictionary(dictionary: ["v": streamed]).isEqual(to: ["v": expected]), "\(streamed) != \(expected)",
                sourceLocation: sourceLocation)
    }

    @Test func repliesAreTheJSONFoundationWrites() throws {
        let result: JSONValue = .object([
            "count": .number(2), "ratio": .number(0.25), "big": .number(1e300), "none": .null, "ok": .bool(true),
            "tasks": .array([.object(["index": .number(0), "text": .string("quote \" backslash \\ slash / tab \t nul \u{0} é ✓")])]),
            "empty": .object([:]), "list": .array([]),
        ])
        let record = JobRecord(id: 7, kind: "tasks", state: .succeeded, parameters: .object(["count": .number(1)]), slots: [0, 1],
                               submittedAt: "2026-12-01T12:00:00.000Z", startedAt: nil, finishedAt: "2026-12-01T12:00:01.000Z",
                               progress: JobProgress(done: 1, total: 2), result: result, error: "line\nbreak", log: ["a", "b\u{1F}"])
        try Self.expectSame(VarlinkReply(parameters: JobReply(job: record), continues: true))
        try Self.expectSame(VarlinkReply(parameters: PoolError.invalidParameter("count", "must be \"1\"").parameters,
                                         error: PoolError.invalidParameter("count", "").name))
        try Self.expectSame(VarlinkReply(parameters: NoParameters()))
        try Self.expectSame(VarlinkReply(parameters: ["pid": 1.5, "whole": 3.0, "negative": -2]))
    }

    /// A status with every part a reply can have; a running job's parameter named like the member
    /// the text is spliced at must not be taken for it.
    private static func fullStatus(uptime: Double) -> StatusReply {
        let job = JobRecord(id: 3, kind: "counter", state: .running, parameters: .object(["uptimeSeconds": .number(0), "mode": .string("atomic")]),
                            slots: [0, 1], submittedAt: "2026-12-01T12:00:00.000Z", startedAt: "2026-12-01T12:00:00.001Z",
                            progress: JobProgress(done: 5, total: 10))
        return StatusReply(
            pid: 42, version: "1.2.3", poolSize: 2,
            workers: [WorkerInfo(slot: 0, pid: 100, state: .busy, job: 3, restarts: 1, lastExit: "killed by signal 9 \"KILL\""),
                      WorkerInfo(slot: 1, pid: 101, state: .ready, job: nil, restarts: 0, lastExit: nil)],
            jobsQueued: 1, jobsRunning: 1, jobsFinished: 7, uptimeSeconds: uptime,
            drain: DrainInfo(reason: "SIGTERM", timeoutSeconds: 30, secondsLeft: 12.25),
            history: HistoryStatus(path: "/var/lib/poold/jobs.sqlite", problem: nil, lastIncident: "line\nbreak", unwrittenJobs: 2),
            instance: "abc", runningJobs: [job])
    }

    @Test func aLocatedMemberIsWhereItsValueIs() throws {
        let status = Self.fullStatus(uptime: 12.5)
        let (text, member) = try #require(try JSONStreamEncoder.encode(status, locating: "uptimeSeconds", allocator: ByteBufferAllocator()))
        #expect(text.getString(at: member.lowerBound, length: member.count) == "12.5")
        #expect(text.getString(at: member.lowerBound - 16, length: 16) == "\"uptimeSeconds\":")
        #expect(text == (try JSONStreamEncoder.encode(status, allocator: ByteBufferAllocator())), "the text is encode's")
        #expect(try JSONStreamEncoder.encode(status, locating: "absent", allocator: ByteBufferAllocator()) == nil)
    }

    /// The status text kept between calls is, at every step, the JSON Foundation writes for the
    /// status it is asked for: with only the uptime changed, and with anything else changed.
    @Test func theKeptStatusTextFollowsTheStatus() throws {
        var text = StatusReplyText()
        var status = Self.fullStatus(uptime: 0.5)
        func expectText(sourceLocation: SourceLocation = #_sourceLocation) throws {
            let kept = text.text(of: status)
            let buffer = try #require(kept, sourceLocation: sourceLocation)
            let streamed = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
            let expected = try Self.foundation(status)
            #expect(NSDictionary(dictionary: ["v": streamed]).isEqual(to: ["v": expected]), "\(streamed) != \(expected)",
                    sourceLocation: sourceLocation)
        }
        try expectText()
        for uptime in [0.75, 1, 2e-7, 123456.789, 9.5e15] {
            status.uptimeSeconds = uptime
            try expectText()
        }
        status.workers[1].state = .busy
        try expectText()
        status.jobsQueued = 0
        try expectText()
        status.history?.unwrittenJobs = 0
        try expectText()
        status.drain?.secondsLeft = 12
        try expectText()
        status.runningJobs?[0].progress?.done = 6
        try expectText()
        status.runningJobs = nil
        status.drain = nil
        status.history = nil
        try expectText()
        status.uptimeSeconds = 3
        try expectText()
    }

    /// Every reply type but those above, as the daemon sends them.
    @Test func everyReplyTypeIsTheJSONFoundationWrites() throws {
        let status = Self.fullStatus(uptime: 1.5)
        try Self.expectSame(VarlinkReply(parameters: status, continues: true))
        try Self.expectSame(VarlinkReply(parameters: ListJobsReply(jobs: status.runningJobs! + status.runningJobs!)))
        try Self.expectSame(VarlinkReply(parameters: ListJobsReply(jobs: [])))
        try Self.expectSame(VarlinkReply(parameters: ResizeReply(poolSize: 2, workers: status.workers)))
        try Self.expectSame(VarlinkReply(parameters: InterfaceDescriptionReply(description: PoolInterface.description)))
        try Self.expectSame(VarlinkReply(parameters: ServiceInfo(vendor: "poold", product: "poold", version: "1", url: "",
                                                                 interfaces: ["org.varlink.service", PoolInterface.name])))
    }

    @Test func aNumberJSONCannotHoldIsAnError() {
        #expect(throws: EncodingError.self) { _ = try JSONStreamEncoder.encode(["x": Double.infinity], allocator: ByteBufferAllocator()) }
    }

    private struct UsesSuperEncoder: Encodable {
        enum Keys: CodingKey { case a }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(1, forKey: .a)
            _ = container.superEncoder()
        }
    }

    private struct EncodesNothing: Encodable {
        func encode(to encoder: Encoder) throws {}
    }

    @Test func whatAStreamCannotFollowIsLeftToFoundation() throws {
        #expect(try Self.streamed(UsesSuperEncoder()) == nil)
        #expect(try Self.streamed(["nothing": EncodesNothing()]) == nil)
    }
}

/// Members of every leaf type are written by the keyed container's own methods: the JSON
/// Foundation writes, at each type's extremes, present or absent.
struct JSONStreamEncoderLeafTests {
    private struct Leaves: Codable {
        var int = Int.min, int8 = Int8.min, int16 = Int16.max, int32 = Int32.min, int64 = Int64.max
        var uint = UInt.max, uint8 = UInt8.max, uint16 = UInt16.max, uint32 = UInt32.max, uint64 = UInt64.max
        // (A Float is written as the Double it converts to, as it always was: 0.1 as 0.10000000149011612.)
        var float: Float = 0.5, double = -0.0, whole = 9.0e15 - 1, large = 9.0e15, tiny = Double.leastNonzeroMagnitude, flag = false, text = "é\u{7}\""
        var optionalInt: Int? = -1, optionalDouble: Double? = 2.5, optionalFloat: Float? = 3.25, optionalText: String? = "x"
        var optionalFlag: Bool? = true, optionalUInt8: UInt8? = 0, optionalList: [Int]? = [0, -1], absent: Int64? = nil
        var absentText: String? = nil, absentList: [String]? = nil
    }

    @Test func leavesAreTheTextFoundationWrites() throws {
        var empty = Leaves()
        (empty.optionalInt, empty.optionalDouble, empty.optionalFloat, empty.optionalText) = (nil, nil, nil, nil)
        (empty.optionalFlag, empty.optionalUInt8, empty.optionalList) = (nil, nil, nil)
        for value in [Leaves(), empty] {
            let buffer = try #require(try JSONStreamEncoder.encode(value, allocator: ByteBufferAllocator()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            let streamed = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
            let expected = try JSONSerialization.jsonObject(with: encoder.encode(value))
            #expect(NSDictionary(dictionary: ["v": streamed]).isEqual(to: ["v": expected]), "\(streamed) != \(expected)")
        }
    }
}

extension JSONStreamEncoderTests {
    /// A record through its own `encode(to:)`, not the writer's shortcut for records.
    private struct ThroughCodable: Encodable {
        let record: JobRecord
        func encode(to encoder: any Encoder) throws { try record.encode(to: encoder) }
    }

    @Test func aRecordIsWrittenAsItsCodableConformanceWritesIt() throws {
        let full = JobRecord(id: 12, kind: "prodcons", state: .running, parameters: .object(["items": .number(5), "name": .string("a \"b\"\n")]),
                             slots: [3, 0, 7], submittedAt: "2026-12-01T12:00:00.000Z", startedAt: "2026-12-01T12:00:00.001Z",
                             finishedAt: "2026-12-01T12:00:02.500Z",
                             progress: JobProgress(done: 3, total: 9, queueDepth: 2, waiting: 1, woken: 4, text: "xy\u{1}z"),
                             result: .object(["ratio": .number(0.5), "list": .array([.null, .bool(false)])]), error: "tab\there",
                             log: ["one", "", "é ✓"], logOffset: 40, waiting: "waiting for 2 idle workers")
        let bare = JobRecord(id: 1, kind: "tasks", state: .queued, parameters: .object([:]), slots: [], submittedAt: "2026-12-01T12:00:00.000Z")
        let partial = JobRecord(id: -3, kind: "", state: .succeeded, parameters: .array([]), slots: [0], submittedAt: "",
                                progress: JobProgress(done: 0, total: 0, waiting: 2), log: [])
        for record in [full, bare, partial] {
            let allocator = ByteBufferAllocator()
            let shortcut = try #require(try JSONStreamEncoder.encode(JobReply(job: record), allocator: allocator))
            let codable = try #require(try JSONStreamEncoder.encode(["job": ThroughCodable(record: record)], allocator: allocator))
            #expect(String(buffer: shortcut) == String(buffer: codable))
            try Self.expectSame(JobReply(job: record))
            for continues in [false, true] {
                var wrapped = try #require(try JSONStreamEncoder.encode(VarlinkReply(parameters: JobReply(job: record), continues: continues ? true : nil),
                                                                        allocator: allocator))
                wrapped.writeInteger(UInt8(0))
                #expect(String(buffer: try JSONStreamEncoder.jobReply(record, continues: continues, allocator: allocator)) == String(buffer: wrapped))
            }
            let listed = try #require(try JSONStreamEncoder.encode(ListJobsReply(jobs: [record, record]), allocator: allocator))
            #expect(try JSONDecoder().decode(ListJobsReply.self, from: Data(listed.readableBytesView)).jobs == [record, record])
        }
    }
}
