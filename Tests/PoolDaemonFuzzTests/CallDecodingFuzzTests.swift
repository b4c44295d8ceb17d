import Foundation
import NIOCore
@testable import PoolDaemon
import PoolProtocol
import PropertyBased
import Testing

/// Call decoding with whatever a client might send as one message: raw bytes, random JSON,
/// almost-valid calls with wrong types, and valid calls with bytes flipped, dropped or inserted.
/// Decoding never crashes; it yields a call or a varlink error with a reason, and the parameters
/// of every method either decode or fail with `InvalidParameter` naming one.
@Suite struct CallDecodingFuzzTests {
    static let methods = PoolInterface.Method.allCases.map(\.qualifiedName)
        + ["org.varlink.service.GetInfo", "org.varlink.service.GetInterfaceDescription", "io.poold.Pool.", "", "x"]

    static let messages = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
        switch RandomInput.int(0...4, &rng) {
        case 0:
            return RandomInput.bytes(count: 0...200, &rng)
        case 1:
            return Array(RandomInput.json(depth: 3, &rng).jsonText.utf8)
        default:
            // A call-shaped object: fields of the header with values of any type, sometimes right.
            var call: [String: JSONValue] = [:]
            if RandomInput.int(0...5, &rng) > 0 {
                call["method"] = RandomInput.int(0...3, &rng) > 0 ? .string(RandomInput.pick(methods, &rng)) : RandomInput.json(depth: 1, &rng)
            }
            if RandomInput.int(0...3, &rng) > 0 { call["parameters"] = RandomInput.json(depth: 3, &rng) }
            for field in ["more", "oneway", "upgrade"] where RandomInput.int(0...3, &rng) == 0 {
                call[field] = RandomInput.int(0...1, &rng) == 0 ? .bool(RandomInput.int(0...1, &rng) == 1) : RandomInput.json(depth: 1, &rng)
            }
            var bytes = Array(JSONValue.object(call).jsonText.utf8)
            // Now and then, damage it.
            for _ in 0..<(RandomInput.int(0...2, &rng) == 0 ? RandomInput.int(1...3, &rng) : 0) where !bytes.isEmpty {
                let at = RandomInput.int(0...(bytes.count - 1), &rng)
                switch RandomInput.int(0...2, &rng) {
                case 0: bytes[at] = UInt8(RandomInput.int(1...255, &rng))
                case 1: bytes.remove(at: at)
                default: bytes.insert(UInt8(RandomInput.int(1...255, &rng)), at: at)
                }
            }
            return bytes
        }
    }

    @Test func anyMessageDecodesToACallOrAVarlinkErrorWithAReason() async {
        let decoder = JSONDecoder()
        await propertyCheck(count: FuzzBudget.iterations(default: 2000), input: Self.messages) { bytes in
            let message = ByteBuffer(bytes: bytes)
            let text = String(decoding: bytes.prefix(120), as: UTF8.self)
            let valid = String(validating: bytes, as: UTF8.self) != nil
            #expect(bytes.withUnsafeBytes { VarlinkCallDecoding.firstInvalidUTF8Offset(in: $0) == nil } == valid, "\(bytes)")

            let header: VarlinkCallHeader
            do throws(PoolError) {
                header = try VarlinkCallDecoding.header(of: message, decoder: decoder)
            } catch {
                #expect(error.name == "io.poold.Pool.InvalidRequest", "\(text)")
                #expect(error.parameters.reason?.isEmpty == false, "\(text)")
                if !valid { #expect(error.parameters.reason?.contains("UTF-8") == true, "\(text): \(error)") }
                return
            }
            #expect(valid, "accepted a message that is not UTF-8: \(bytes)")
            _ = header.method

            // Whatever the method, each parameter type decodes or names what is wrong.
            func check<P: Decodable>(_ type: P.Type) {
                do throws(PoolError) {
                    _ = try VarlinkCallDecoding.parameters(type, from: message, decoder: decoder)
                } catch {
                    #expect(error.name == "io.poold.Pool.InvalidParameter", "\(text): \(error)")
                    #expect(error.parameters.parameter?.isEmpty == false, "\(text): \(error)")
                    #expect(error.parameters.reason?.isEmpty == false, "\(text): \(error)")
                }
            }
            check(RunRequest.self)
            check(JobIDRequest.self)
            check(ListJobsRequest.self)
            check(ResizeRequest.self)
            check(InterfaceDescriptionRequest.self)
            check(NoParameters.self)
        }
    }

    /// Calls are read by `PlainJSONParser` first: whatever it accepts reads as Foundation reads it,
    /// the call's header and its parameters included (whatever it declines goes to Foundation).
    @Test func whatThePlainParserAcceptsReadsAsFoundationReadsIt() async {
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func text<T: Encodable>(_ value: T?) -> String? { value.flatMap { try? encoder.encode($0) }.map { String(decoding: $0, as: UTF8.self) } }
        await propertyCheck(count: FuzzBudget.iterations(default: 2000), input: Self.messages) { bytes in
            let shown = String(decoding: bytes.prefix(120), as: UTF8.self)
            guard let tree = bytes.withUnsafeBytes({ PlainJSONParser.parse($0) }) else { return }
            #expect(tree == (try? decoder.decode(JSONValue.self, from: Data(bytes))), "\(shown)")
            let message = ByteBuffer(bytes: bytes)
            let header = try? VarlinkCallDecoding.header(of: message, decoder: decoder)
            let foundationHeader = try? decoder.decode(VarlinkCallHeader.self, from: Data(bytes))
            #expect(header?.method == foundationHeader?.method && header?.more == foundationHeader?.more
                    && header?.oneway == foundationHeader?.oneway && header?.upgrade == foundationHeader?.upgrade, "\(shown)")
            let run = try? VarlinkCallDecoding.parameters(RunRequest.self, from: message, decoder: decoder)
            let foundationRun = (try? decoder.decode(VarlinkParametersEnvelope<RunRequest>.self, from: Data(bytes))).map {
                $0.parameters ?? (try? decoder.decode(RunRequest.self, from: Data("{}".utf8)))
            } ?? nil
            #expect(text(run) == text(foundationRun), "\(shown)")
            let resize = try? VarlinkCallDecoding.parameters(ResizeRequest.self, from: message, decoder: decoder)
            let foundationResize = (try? decoder.decode(VarlinkParametersEnvelope<ResizeRequest>.self, from: Data(bytes))).map {
                $0.parameters ?? (try? decoder.decode(ResizeRequest.self, from: Data("{}".utf8)))
            } ?? nil
            #expect(text(resize) == text(foundationResize), "\(shown)")
        }
    }

    @Test func thePlainParserDeclinesWhatItCannotReadExactly() {
        func parse(_ text: String) -> JSONValue? { Array(text.utf8).withUnsafeBytes { PlainJSONParser.parse($0) } }
        #expect(parse(#"{"method":"io.poold.Pool.Run","parameters":{"kind":"tasks","parameters":{"count":1}},"more":false}"#)
                == .object(["method": .string("io.poold.Pool.Run"), "more": .bool(false),
                            "parameters": .object(["kind": .string("tasks"), "parameters": .object(["count": .number(1)])])]))
        #expect(parse(" [1, -2, null, true, \"\"] \n") == .array([.number(1), .number(-2), .null, .bool(true), .string("")]))
        for declined in [#"{"a":"\n"}"#, #"{"a":1.5}"#, #"{"a":1e3}"#, #"{"a":01}"#, #"{"a":-0}"#, #"{"a":1234567890123456}"#,
                         #"{"a":1,"a":2}"#, #"{"a":1} x"#, #"{"a":1,}"#, "{\"a\":\"\u{1}\"}", #"{"a":tru}"#, #"{"a":-}"#, "",
                         String(repeating: "[", count: PlainJSONParser.maximumDepth + 2) + String(repeating: "]", count: PlainJSONParser.maximumDepth + 2)] {
            #expect(parse(declined) == nil, "\(declined)")
        }
        #expect(Array([0x22, 0xFF, 0x22] as [UInt8]).withUnsafeBytes { PlainJSONParser.parse($0) } == nil, "invalid UTF-8 in a string")
        #expect(parse(#"{"kind":"tâches","é":[]}"#) == .object(["kind": .string("tâches"), "é": .array([])]), "valid UTF-8 beyond ASCII")
    }

    @Test func theFirstInvalidUTF8ByteIsFoundExactly() async {
        let cases = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
            // Valid text with one random byte inserted.
            var bytes = Array(RandomInput.string(&rng).utf8) + Array(RandomInput.string(&rng).utf8)
            bytes.insert(UInt8(RandomInput.int(0x80...0xFF, &rng)), at: RandomInput.int(0...bytes.count, &rng))
            return bytes
        }
        await propertyCheck(count: FuzzBudget.iterations(default: 2000), input: cases) { bytes in
            let offset = bytes.withUnsafeBytes { VarlinkCallDecoding.firstInvalidUTF8Offset(in: $0) }
            if let offset {
                #expect(String(validating: bytes[..<offset], as: UTF8.self) != nil, "\(bytes)")
                #expect(String(validating: bytes, as: UTF8.self) == nil, "\(bytes)")
            } else {
                #expect(String(validating: bytes, as: UTF8.self) != nil, "\(bytes)")
            }
        }
    }
}
