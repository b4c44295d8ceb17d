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
