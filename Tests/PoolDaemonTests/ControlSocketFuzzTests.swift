import Foundation
import PoolProtocol
import PropertyBased
import Testing

/// Random calls and garbage against the real daemon over its real socket, on one connection: every
/// message gets exactly one reply, in order, and every error reply is a varlink error with a
/// reason; afterwards the daemon still serves and, in `stop()`, exits cleanly leaving nothing.
/// `POOLD_FUZZ_ITERATIONS` runs it longer, as it does the unit-level fuzz tests.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ControlSocketFuzzTests {
    typealias RNG = any SeededRandomNumberGenerator

    /// Every method but Shutdown (it would end the run); Resize within 1...2 (--max-workers 2).
    static let methods = ["Status", "Run", "ListJobs", "GetJob", "Cancel", "Resize", "Frobnicate"].map { "io.poold.Pool." + $0 }
        + ["org.varlink.service.GetInfo", "org.varlink.service.GetInterfaceDescription", "org.example.Nothing.Call", ""]

    static let allowedErrors: Set<String> = [
        "InvalidParameter", "NotFound", "PoolTooSmall", "ShuttingDown", "InvalidRequest", "ResourceLimit",
        "MethodNotFound", "InterfaceNotFound",
    ]

    static func int(_ range: ClosedRange<Int>, _ rng: inout RNG) -> Int { Int.random(in: range, using: &rng) }

    static func value(_ depth: Int, _ rng: inout RNG) -> JSONValue {
        let numbers: [Double] = [0, 1, 2, 3, -1, 1e300, 0.5, 4096, 1e10, 100_001, 9.3e18]
        switch int(0...(depth > 0 ? 5 : 3), &rng) {
        case 0: return .null
        case 1: return .bool(int(0...1, &rng) == 1)
        case 2: return .number(numbers[int(0...(numbers.count - 1), &rng)])
        case 3: return .string(["", "counter", "tasks", "locked", "1s", "x", "é", "io.poold.Pool"][int(0...7, &rng)])
        case 4: return .array((0..<int(0...3, &rng)).map { _ in value(depth - 1, &rng) })
        default:
            let keys = ["kind", "parameters", "id", "limit", "workers", "detach", "timeout", "interface", "count", "iterations", "x"]
            var members: [String: JSONValue] = [:]
            for _ in 0..<int(0...4, &rng) { members[keys[int(0...(keys.count - 1), &rng)]] = value(depth - 1, &rng) }
            return .object(members)
        }
    }

    static let messages = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
        if int(0...4, &rng) == 0 {
            // Garbage: any bytes but the terminator.
            return (0..<int(0...64, &rng)).map { _ in UInt8(int(1...255, &rng)) }
        }
        var call: [String: JSONValue] = ["method": .string(methods[int(0...(methods.count - 1), &rng)])]
        if int(0...3, &rng) > 0 { call["parameters"] = value(3, &rng) }
        // `more` and `oneway` only as values that ask for one reply (or as wrong types).
        if int(0...5, &rng) == 0 { call["more"] = [.bool(false), .string("yes"), .number(1)][int(0...2, &rng)] }
        if int(0...5, &rng) == 0 { call["oneway"] = [.bool(false), .null, .array([])][int(0...2, &rng)] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = [UInt8]((try? encoder.encode(JSONValue.object(call))) ?? Data())
        // A quick Run: whatever random parameters came, a valid counter job must stay short.
        if call["method"] == .string("io.poold.Pool.Run"), int(0...3, &rng) == 0 {
            bytes = Array(#"{"method":"io.poold.Pool.Run","parameters":{"kind":"tasks","parameters":{"count":2}}}"#.utf8)
        }
        return bytes
    }

    @Test func randomCallsAndGarbageEachGetOneWellFormedReply() async throws {
        let daemon = try DaemonHarness.start(workers: 2, arguments: ["--max-workers", "2"])
        defer { try? daemon.stop() }
        let connection = try RawConnection(socketPath: daemon.socketPath)
        await propertyCheck(count: FuzzBudget.iterations(default: 300), input: Self.messages) { bytes in
            try connection.send(bytes + [0])
            let reply = try connection.reply(timeoutSeconds: 60)
            if let error = reply.error {
                let shortName = String(error.split(separator: ".").last ?? "")
                #expect(Self.allowedErrors.contains(shortName), "\(error) for \(String(decoding: bytes, as: UTF8.self))")
                #expect(reply.parameters?["reason"]?.stringValue?.isEmpty == false, "\(reply)")
            }
            #expect(reply.continues == nil, "a single call got a continuing reply")
        }
        let status = try daemon.status()
        #expect(status.workers.count == status.poolSize)
        try daemon.stop()
    }
}

/// How many random cases a property gets (`POOLD_FUZZ_ITERATIONS`, else the default).
enum FuzzBudget {
    static func iterations(default value: Int) -> Int {
        ProcessInfo.processInfo.environment["POOLD_FUZZ_ITERATIONS"].flatMap(Int.init).map { max($0, 1) } ?? value
    }
}
