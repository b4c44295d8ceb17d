import Foundation
@testable import PoolProtocol
import Testing

/// Results are summed up by decoding them straight from the tree (`JSONValueDecoder`): the same
/// value `JSONValue.decode` gives through JSON text, or a refusal that sends the caller there.
struct JSONValueDecoderTests {
    private struct Nested: Codable, Equatable {
        var name: String
        var optional: Int?
        var present: Double?
        var null: String?
        var flags: [Bool]
        var table: [String: [Int]]
        var byNumber: [Int: String]
        var big: UInt64
        var negative: Int8
        var inner: Inner?
        var any: JSONValue
        struct Inner: Codable, Equatable { var value: Double; var nothing: String? }
    }

    private struct Whole: Codable { var value: Int }
    private struct Single: Codable { var value: Float }

    @Test func valuesAreTheOnesJSONDecoderGives() throws {
        let value = Nested(name: "quote \" é", optional: nil, present: 0.25, null: nil, flags: [true, false], table: ["a": [1, 2], "b": []],
                           byNumber: [3: "three"], big: 1 << 52, negative: -5, inner: .init(value: 1.5, nothing: nil),
                           any: .object(["list": .array([.null, .bool(false), .number(2), .string("s")])]))
        var tree = try JSONValue(encoding: value)
        if case .object(var members) = tree { members["null"] = .null; tree = .object(members) }
        let direct = try JSONValueDecoder.decode(Nested.self, from: tree)
        #expect(direct == (try tree.decode(Nested.self)) && direct == value)
        let tasks = TasksResult(count: 2, ran: 2, tasks: [TaskRun(index: 0, participant: 0, slot: 1, pid: 42, waitMicros: 7)])
        #expect(try JSONValueDecoder.decode(TasksResult.self, from: JSONValue(encoding: tasks)) == tasks)
        #expect(try JSONValue(encoding: tasks).decodeResult(ofKind: "tasks")?.summary == "2 of 2 tasks ran")
    }

    @Test func whatItCannotDecodeExactlyItRefuses() {
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Whole.self, from: .object(["value": .number(1.5)])) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Whole.self, from: .object(["value": .number(1e300)])) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Whole.self, from: .object(["value": .string("1")])) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Whole.self, from: .object([:])) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Whole.self, from: .array([])) }
        // Float is JSONDecoder's own parse: left to it.
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Single.self, from: .object(["value": .number(0.5)])) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder.decode(Date.self, from: .number(0)) }
    }
}
