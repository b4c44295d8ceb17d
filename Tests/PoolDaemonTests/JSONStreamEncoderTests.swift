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
