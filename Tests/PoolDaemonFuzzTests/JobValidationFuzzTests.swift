import Foundation
import PoolDaemon
import PoolProtocol
import PropertyBased
import Testing

/// Job parameter validation with random JSON: the real parameter names of each kind with values
/// at, inside and past every bound (and of every wrong type), unknown names, odd pool sizes.
/// Validation never crashes; what it refuses, it refuses naming the parameter; what it accepts is
/// within every documented bound, so no accepted job means an unbounded allocation.
@Suite struct JobValidationFuzzTests {
    static let parameterNames: [String: [String]] = [
        "counter": ["mode", "workers", "iterations", "start", "split"],
        "prodcons": ["producers", "consumers", "items", "capacity", "payloadBytes", "batch", "seed", "produceDelay",
                     "consumeDelay", "trace"],
        "event": ["waiters", "timeoutWaiters", "timeout", "setAfter"],
        "tasks": ["count", "workers"],
        "append": ["workers", "chars", "counts", "intervals", "memory"],
    ]

    struct Request: Sendable, CustomStringConvertible {
        var kind: String
        var parameters: JSONValue?
        var poolSize: Int

        var description: String { "\(kind) \(parameters?.jsonText ?? "nil") on \(poolSize) workers" }
    }

    static let requests = Generator<Request, Shrink.None<Request>> { rng in
        let kinds = Array(parameterNames.keys).sorted()
        let kind = RandomInput.int(0...19, &rng) == 0 ? RandomInput.string(&rng) : RandomInput.pick(kinds, &rng)
        let names = parameterNames[kind] ?? []
        var fields: [String: JSONValue] = [:]
        for name in names where RandomInput.int(0...2, &rng) == 0 {
            fields[name] = value(for: name, &rng)
        }
        if RandomInput.int(0...9, &rng) == 0 { fields[RandomInput.string(&rng)] = RandomInput.json(depth: 1, &rng) }
        let parameters: JSONValue?
        switch RandomInput.int(0...19, &rng) {
        case 0: parameters = nil
        case 1: parameters = RandomInput.json(depth: 2, &rng)
        default: parameters = .object(fields)
        }
        let poolSize = RandomInput.pick([1, 2, 3, 4, 8, 64, 256, 4096], &rng)
        return Request(kind: kind, parameters: parameters, poolSize: poolSize)
    }

    /// A value for a named parameter: mostly of the right type, often at or past a bound.
    static func value(for name: String, _ rng: inout RandomInput.RNG) -> JSONValue {
        switch RandomInput.int(0...9, &rng) {
        case 0: return RandomInput.json(depth: 2, &rng)
        case 1...4: return .number(RandomInput.number(&rng))
        case 5: return .number(Double(RandomInput.int(0...8, &rng)))
        case 6: return .array((0..<RandomInput.int(0...4, &rng)).map { _ in
            RandomInput.int(0...1, &rng) == 0 ? .number(RandomInput.number(&rng)) : .string(RandomInput.string(&rng)) })
        default: return .string(RandomInput.string(&rng))
        }
    }

    static let messageQueueMaxDepth: Int = {
        let text = (try? String(contentsOfFile: "/proc/sys/fs/mqueue/msg_max", encoding: .utf8)) ?? "10"
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 10
    }()

    @Test func validationAcceptsOnlyBoundedJobsAndNamesWhatItRefuses() async {
        await propertyCheck(count: FuzzBudget.iterations(default: 3000), input: Self.requests) { request in
            let accepted: JobValidation.Accepted
            do throws(PoolError) {
                accepted = try JobValidation.validate(kind: request.kind, parameters: request.parameters, poolSize: request.poolSize)
            } catch {
                Self.checkRefusal(error, request)
                return
            }
            Self.checkAccepted(accepted, request)
        }
    }

    static func checkRefusal(_ error: PoolError, _ request: Request) {
        #expect(error.parameters.reason?.isEmpty == false, "\(request): \(error)")
        switch error.shortName {
        case "InvalidParameter":
            guard let named = error.parameters.parameter else {
                Issue.record("InvalidParameter without a parameter: \(request): \(error)")
                return
            }
            // One the request has, or one of the kind's whose default does not fit the rest (append's
            // two default characters on one worker).
            var allowed: Set<String> = ["kind", "parameters"]
            allowed.formUnion(parameterNames[request.kind] ?? [])
            if case .object(let fields)? = request.parameters { allowed.formUnion(fields.keys) }
            #expect(allowed.contains(named), "names a parameter that is not the request's nor its kind's: \(request): \(error)")
        case "PoolTooSmall":
            #expect((error.parameters.requested ?? 0) > request.poolSize, "\(request): \(error)")
            #expect(error.parameters.poolSize == request.poolSize)
        case "ResourceLimit":
            break
        default:
            Issue.record("unexpected refusal \(error) for \(request)")
        }
    }

    static func checkAccepted(_ accepted: JobValidation.Accepted, _ request: Request) {
        let parameters = accepted.parameters
        func number(_ name: String) -> Int { parameters[name]?.intValue ?? -1 }
        func within(_ name: String, _ range: ClosedRange<Int>) {
            #expect(range.contains(number(name)), "\(name) = \(parameters[name]?.jsonText ?? "nil") accepted: \(request)")
        }
        #expect((1...request.poolSize).contains(accepted.workers), "\(request)")
        #expect(accepted.totalWork >= 0, "\(request)")
        // A number the client gave and the daemon accepted is exactly the one the job runs with.
        if case .object(let given)? = request.parameters {
            for (name, value) in given {
                guard case .number = value, case .number = parameters[name] ?? .null else { continue }
                if request.kind == "tasks", name == "workers" {
                    // Documented: no more workers than tasks are taken.
                    #expect(number(name) == min(value.intValue ?? -1, number("count")), "\(request)")
                    continue
                }
                #expect(value == parameters[name], "\(name) was \(value.jsonText), runs as \(parameters[name]!.jsonText): \(request)")
            }
        }
        switch request.kind {
        case "counter":
            within("workers", 1...4096)
            within("iterations", 1...10_000_000_000)
            within("start", -(1 << 52)...(1 << 52))
        case "prodcons":
            within("producers", 1...4096)
            within("consumers", 1...4096)
            within("items", 1...1_000_000_000)
            within("capacity", 1...Self.messageQueueMaxDepth)
            within("payloadBytes", 8...1_048_576)
            within("batch", 1...65536)
            if parameters["trace"] == .bool(true) { within("items", 1...100_000) }
        case "event":
            within("waiters", 0...1024)
            within("timeoutWaiters", 0...1024)
        case "tasks":
            within("count", 1...100_000)
            within("workers", 1...max(1, number("count")))
        case "append":
            guard case .array(let counts)? = parameters["counts"] else {
                Issue.record("append without counts: \(request)")
                return
            }
            #expect(counts.count == accepted.workers)
            let values = counts.map { $0.intValue ?? -1 }
            #expect(values.allSatisfy { (0...100_000).contains($0) } && values.reduce(0, +) <= 1_000_000, "\(request)")
        default:
            Issue.record("accepted an unknown kind: \(request)")
        }
    }
}
