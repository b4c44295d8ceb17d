import Foundation
import PoolProtocol
import Testing

/// `JSONValue.jsonText`, which the job history writes instead of going through JSONEncoder: it must
/// read back as the same value, whatever the value holds.
struct JSONValueTextTests {
    private func readBack(_ value: JSONValue) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(value.jsonText.utf8))
    }

    @Test(arguments: [
        JSONValue.null, .bool(true), .bool(false), .number(0), .number(-7), .number(9_007_199_254_740_000),
        .number(0.1), .number(-2.5e-7), .number(1e300), .number(-1e300), .number(Double.leastNonzeroMagnitude),
        .string(""), .string("plain"), .string("quote \" backslash \\ slash /"), .string("tab\tnew\nline\rreturn"),
        .string("\u{0}\u{1}\u{1F}\u{7F}"), .string("é 漢字 🧵"),
        .array([]), .object([:]),
        .object(["b": .array([.number(1), .string("x"), .null]), "a": .object(["nested": .bool(true)])]),
    ])
    func readsBackAsTheSameValue(_ value: JSONValue) throws {
        #expect(try readBack(value) == value, "\(value.jsonText)")
    }

    @Test func integersStayIntegersAndKeysAreSorted() {
        #expect(JSONValue.object(["z": .number(3), "a": .number(2.5)]).jsonText == #"{"a":2.5,"z":3}"#)
        #expect(JSONValue.array([.number(0), .number(-7), .number(10), .number(-8_999_999_999_999_999)]).jsonText
            == "[0,-7,10,-8999999999999999]")
    }

    @Test func controlCharactersAreEscapedAsJSONRequires() {
        #expect(JSONValue.string("\u{1}\n").jsonText == #""\u0001\n""#)
        #expect(JSONValue.string("\u{1F}\u{7F}").jsonText == "\"\\u001f\u{7F}\"")
    }

    @Test func textBeyondASCIIIsWrittenAsItIs() {
        #expect(JSONValue.string("é 漢字 🧵").jsonText == "\"é 漢字 🧵\"")
    }

    @Test func numbersJSONCannotHoldBecomeNull() {
        #expect(JSONValue.array([.number(.nan), .number(.infinity)]).jsonText == "[null,null]")
    }
}
