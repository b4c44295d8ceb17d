import Foundation
import PoolProtocol
import PropertyBased

/// How many random cases each property gets: a few hundred by default, so that the whole fuzz
/// suite takes seconds in CI; `POOLD_FUZZ_ITERATIONS=100000 swift test --filter Fuzz` runs longer.
enum FuzzBudget {
    static func iterations(default value: Int) -> Int {
        ProcessInfo.processInfo.environment["POOLD_FUZZ_ITERATIONS"].flatMap(Int.init).map { max($0, 1) } ?? value
    }
}

/// Random inputs that lean on the edges: numbers at and just past every bound the daemon has,
/// numbers no integer can hold, strings that almost parse, deep and wrong-typed structures.
enum RandomInput {
    typealias RNG = any SeededRandomNumberGenerator

    static let edgeNumbers: [Double] = [
        0, 1, -1, 2, 3, 7, 8, 9, 10, 16, 100, 101, 1000, 1024, 1025, 4096, 4097, 65536, 65537,
        100_000, 100_001, 1_000_000, 1_000_001, 1_048_576, 1_048_577, 1e9, 1e9 + 1, 1e10, 1e10 + 1,
        4_503_599_627_370_496, 4_503_599_627_370_498, 9e15, 9e18, 9.3e18, 1.8e19, 1e300, -1e300,
        0.5, 1.5, -0.5, 2.000001, -4_503_599_627_370_498,
    ]

    static let edgeStrings: [String] = [
        "", "locked", "unsafe", "atomic", "sloppy", "shared", "private", "oO", "o", "oOx", " ", "\u{7f}",
        "0", "1s", "500ms", "250us", "10ns", "1m", "61s", "3600s", "3601s", "-1s", "1e400s", "nan s", "inf s",
        "0..1s", "10ms..50ms", "1s..0", "..", "1..", "..1s", "60s..61s", "10,20", "1,2,3", "1s,600ms", ",",
        "counter", "prodcons", "event", "tasks", "append", "juggle", "\u{0}", "é", "💥", String(repeating: "9", count: 40),
    ]

    static func int(_ range: ClosedRange<Int>, _ rng: inout RNG) -> Int { Int.random(in: range, using: &rng) }

    static func pick<T>(_ choices: [T], _ rng: inout RNG) -> T { choices[int(0...(choices.count - 1), &rng)] }

    static func number(_ rng: inout RNG) -> Double {
        switch int(0...3, &rng) {
        case 0, 1: return pick(edgeNumbers, &rng)
        case 2: return Double(int(-1_000_000...1_000_000, &rng))
        default: return Double.random(in: -1e12...1e12, using: &rng)
        }
    }

    static func string(_ rng: inout RNG) -> String {
        if int(0...2, &rng) > 0 { return pick(edgeStrings, &rng) }
        let scalars = (0..<int(0...12, &rng)).compactMap { _ in Unicode.Scalar(UInt32(int(1...0x2FF, &rng))) }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Any JSON value, nested at most `depth` deep.
    static func json(depth: Int, _ rng: inout RNG) -> JSONValue {
        switch int(0...(depth > 0 ? 6 : 4), &rng) {
        case 0: return .null
        case 1: return .bool(int(0...1, &rng) == 1)
        case 2, 3: return .number(number(&rng))
        case 4: return .string(string(&rng))
        case 5: return .array((0..<int(0...4, &rng)).map { _ in json(depth: depth - 1, &rng) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<int(0...4, &rng) { members[string(&rng)] = json(depth: depth - 1, &rng) }
            return .object(members)
        }
    }

    /// Bytes of any value but NUL (the varlink terminator).
    static func bytes(count: ClosedRange<Int>, _ rng: inout RNG) -> [UInt8] {
        (0..<int(count, &rng)).map { _ in UInt8(int(1...255, &rng)) }
    }
}

extension JSONValue {
    /// The value as compact JSON text.
    var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("null".utf8), as: UTF8.self)
    }
}
