import Foundation
@testable import PoolDaemon
import PoolProtocol
import Testing

/// Parameters and results become JSON values through `JSONValueEncoder`: the same values as the
/// round trip through JSON text it replaces (`JSONValue(encoding:)`).
struct JSONValueEncoderTests {
    private struct Nested: Codable {
        var name: String
        var optional: Int?
        var present: Double?
        var flags: [Bool]
        var table: [String: [Int]]
        var byNumber: [Int: String]
        var big: UInt64
        var negative: Int8
        var when: Date
        var bytes: Data
        var inner: Inner?
        struct Inner: Codable { var value: Float; var nothing: String? }
    }

    private static func expectSame(_ value: some Encodable, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try JSONValueEncoder.encode(value) == JSONValue(encoding: value), sourceLocation: sourceLocation)
    }

    @Test func valuesAreTheOnesTheJSONTextRoundTripGives() throws {
        try Self.expectSame(Nested(name: "quote \" é", optional: nil, present: 0.25, flags: [true, false], table: ["a": [1, 2], "b": []],
                                   byNumber: [3: "three"], big: 1 << 60, negative: -5, when: Date(timeIntervalSince1970: 1_800_000_000.5),
                                   bytes: Data([0, 1, 255]), inner: .init(value: 1.5, nothing: nil)))
        try Self.expectSame(TasksParameters(count: 3, workers: 2))
        try Self.expectSame(["nested": [[1, 2], [3]]])
        try Self.expectSame(JSONValue.object(["already": .array([.null, .bool(true), .number(-1e300), .string("s")])]))
        try Self.expectSame(Optional<Int>.none)
        try Self.expectSame(42)
    }

    @Test func aNumberJSONCannotHoldIsAnError() {
        #expect(throws: EncodingError.self) { _ = try JSONValueEncoder.encode(["x": Double.nan]) }
        #expect(throws: EncodingError.self) { _ = try JSONValueEncoder.encode([Float.infinity]) }
    }

    @Test func aJobsSecondsReadAsPrintfWritesThem() {
        for value in [0.0, 0.0004, 0.0123, 0.35, 0.9994, 1.2, 12.345678, 59.999, 3600.25, 123456.789] {
            #expect(JobScheduler.fixed(value, decimals: 3) == String(format: "%.3f", value), "\(value)")
            #expect(JobScheduler.seconds(value) == (value >= 1 ? String(format: "%.2fs", value) : String(format: "%.0fms", value * 1000)), "\(value)")
        }
    }
}

/// Leaves become values without a node of their own, containers nodes: the same tree, and an
/// error that names the member at fault.
struct JSONValueEncoderLeafTests {
    private struct Leaves: Codable {
        var int = Int.min, uint64 = UInt64.max, int8 = Int8.min, float: Float = 0.5, double = -0.0, flag = true, text = "t"
        var optional: Int? = nil, present: String? = "p", list = [[1], [2, 3]], strings = ["a"], table = ["k": 1.5]
        var empty: [String: Int] = [:], when = Date(timeIntervalSinceReferenceDate: 0), bytes = Data([1]), nested = Nested()
        struct Nested: Codable { var leaf = 1; var deeper = [Deeper()] }
        struct Deeper: Codable { var flag = false; var nothing: Double? = nil }
    }

    private struct Bad: Encodable {
        var inner = Inner()
        struct Inner: Encodable { var value = Double.infinity }
    }

    @Test func treesAreTheOnesTheJSONTextRoundTripGives() throws {
        let (direct, roundTrip) = (try JSONValueEncoder.encode(Leaves()), try JSONValue(encoding: Leaves()))
        #expect(direct == roundTrip, "\(direct)\n\(roundTrip)")
        #expect(try JSONValueEncoder.encode("s") == JSONValue(encoding: "s"))
        #expect(try JSONValueEncoder.encode(true) == JSONValue(encoding: true))
        #expect(try JSONValueEncoder.encode(1.5) == JSONValue(encoding: 1.5))
        #expect(try JSONValueEncoder.encode(Int.max) == JSONValue(encoding: Int.max))
        #expect(throws: EncodingError.self) { _ = try JSONValueEncoder.encode(Double.nan) }
    }

    /// A key encoded twice: the later value wins, whichever of leaf and container each is.
    private struct Twice: Encodable {
        enum Keys: CodingKey { case a, b }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(1, forKey: .a)
            try container.encode([2], forKey: .b)
            try container.encode(["x": 3], forKey: .a)
            try container.encode("later", forKey: .b)
        }
    }

    @Test func aKeyEncodedTwiceHasItsLaterValue() throws {
        #expect(try JSONValueEncoder.encode(Twice()) == .object(["a": .object(["x": .number(3)]), "b": .string("later")]))
    }

    @Test func anErrorNamesTheMember() {
        do {
            _ = try JSONValueEncoder.encode(Bad())
            Issue.record("infinity encoded")
        } catch EncodingError.invalidValue(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["inner", "value"])
        } catch {
            Issue.record("\(error)")
        }
    }
}
