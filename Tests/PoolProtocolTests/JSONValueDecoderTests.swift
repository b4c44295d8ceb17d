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

/// Optional members are read with one lookup and errors name their path without a path made per
/// member: what `JSONDecoder` gives for absent, null and present members, and the same paths.
struct JSONValueDecoderOptionalTests {
    private struct Optionals: Codable, Equatable {
        var flag: Bool?
        var text: String?
        var number: Double?
        var small: Int8?
        var big: UInt64?
        var whole: Int?
        var list: [Int]?
        var any: JSONValue?
        var inner: Inner?
        struct Inner: Codable, Equatable { var value: Int? }
    }

    @Test func absentNullAndPresentMembersAreWhatJSONDecoderReads() throws {
        let names = ["flag", "text", "number", "small", "big", "whole", "list", "any", "inner"]
        let present: [String: JSONValue] = [
            "flag": .bool(true), "text": .string("t"), "number": .number(0.5), "small": .number(-128), "big": .number(4503599627370496),
            "whole": .number(-7), "list": .array([.number(1)]), "any": .object(["k": .null]), "inner": .object(["value": .null]),
        ]
        for absent in [false, true] {
            let nulls = JSONValue.object(Dictionary(uniqueKeysWithValues: names.map { ($0, JSONValue.null) }))
            let tree: JSONValue = absent ? .object([:]) : nulls
            let direct = try JSONValueDecoder.decode(Optionals.self, from: tree)
            #expect(direct == (try tree.decode(Optionals.self)) && direct == Optionals())
        }
        let tree = JSONValue.object(present)
        let direct = try JSONValueDecoder.decode(Optionals.self, from: tree)
        #expect(direct == (try tree.decode(Optionals.self)))
        #expect(direct.any == .object(["k": .null]) && direct.inner == .init(value: nil) && direct.small == -128)
    }

    @Test func errorsNameTheMemberAtFault() {
        func path(_ tree: JSONValue) -> [String]? {
            do {
                _ = try JSONValueDecoder.decode(Optionals.self, from: tree)
                return nil
            } catch DecodingError.typeMismatch(_, let context) {
                return context.codingPath.map(\.stringValue)
            } catch {
                return ["unexpected \(error)"]
            }
        }
        #expect(path(.object(["whole": .number(1.5)])) == ["whole"])
        #expect(path(.object(["text": .number(1)])) == ["text"])
        #expect(path(.object(["inner": .object(["value": .string("x")])])) == ["inner", "value"])
        #expect(path(.object(["list": .array([.string("x")])])) == ["list"])
    }
}
