import Foundation
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// Turns one varlink message into a call: its header first (method, more, oneway), then, once the
/// method is known, its parameters. Every way a message can be wrong ends in a varlink error with
/// a `reason` (never a crash, never a silent default): `InvalidRequest` for the message,
/// `InvalidParameter` naming the parameter for its parameters. Public for the fuzz tests.
public enum VarlinkCallDecoding {
    /// The call's header, or `InvalidRequest` saying what is wrong with the message.
    public static func header(of message: ByteBuffer, decoder: JSONDecoder) throws(PoolError) -> VarlinkCallHeader {
        try call(of: message, decoder: decoder).header
    }

    /// The call's header, and the message as a tree when it is plain JSON, which `parameters`
    /// decodes them from without parsing the message again.
    static func call(of message: ByteBuffer, decoder: JSONDecoder) throws(PoolError) -> (header: VarlinkCallHeader, tree: JSONValue?) {
        // Plain JSON is valid UTF-8 (its strings are validated, and all else is ASCII): only a
        // message that is not needs the check.
        let tree = plainTree(of: message)
        if let tree, let header = plainHeader(of: tree) ?? (try? JSONValueDecoder.decode(VarlinkCallHeader.self, from: tree)) {
            return (header, tree)
        }
        if let offset = message.withUnsafeReadableBytes({ firstInvalidUTF8Offset(in: $0) }) {
            throw PoolError.invalidRequest("the message is not valid UTF-8 (at byte \(offset)); varlink messages are JSON text")
        }
        do {
            return (try decoder.decode(VarlinkCallHeader.self, from: message), tree)
        } catch {
            throw PoolError.invalidRequest("not a varlink call (a JSON object with a \"method\" string, terminated by NUL): \(explain(error))")
        }
    }

    /// The header as decoding it from the tree has it, read straight from its members: nil where
    /// that decoding could fail (a member of another type), which then says why.
    private static func plainHeader(of tree: JSONValue) -> VarlinkCallHeader? {
        guard case .object(let members) = tree, case .string(let method)? = members["method"] else { return nil }
        /// As `decodeIfPresent` of a Bool: absent or null is nil.
        func flag(_ name: String) -> Bool?? {
            switch members[name] {
            case nil, .null?: return .some(nil)
            case .bool(let value)?: return .some(value)
            default: return nil
            }
        }
        guard let more = flag("more"), let oneway = flag("oneway"), let upgrade = flag("upgrade") else { return nil }
        return VarlinkCallHeader(method: method, more: more, oneway: oneway, upgrade: upgrade)
    }

    /// The call's `parameters` as `type` (an absent or null `parameters` is an empty object), or
    /// `InvalidParameter` naming the parameter at fault.
    public static func parameters<P: Decodable>(_ type: P.Type, from message: ByteBuffer, decoder: JSONDecoder) throws(PoolError) -> P {
        try parameters(type, from: message, tree: plainTree(of: message), decoder: decoder)
    }

    /// As `parameters(_:from:decoder:)`, with the message's tree when it is plain JSON (`call`'s).
    static func parameters<P: Decodable>(_ type: P.Type, from message: ByteBuffer, tree: JSONValue?, decoder: JSONDecoder) throws(PoolError) -> P {
        if P.self == NoParameters.self, case .object(let members)? = tree {
            // No member is read: absent, null or any object decodes, as the decoder below has it
            // (a comparison of metadata, not a dynamic cast).
            switch members["parameters"] {
            case nil, .null?, .object?: return unsafeBitCast(NoParameters(), to: P.self)
            default: break
            }
        }
        if let tree,
           let parameters = try? JSONValueDecoder.decode(P.self, from: tree["parameters"].flatMap { $0 == .null ? nil : $0 } ?? .object([:])) {
            return parameters
        }
        do {
            let envelope = try decoder.decode(VarlinkParametersEnvelope<P>.self, from: message)
            if let parameters = envelope.parameters { return parameters }
            return try decoder.decode(P.self, from: ByteBuffer(string: "{}"))
        } catch {
            if case DecodingError.dataCorrupted(let context) = error, context.codingPath.isEmpty,
               let field = firstNonIntegerNumber(in: message, decoder: decoder) {
                // Foundation reports a number that no integer can hold (1e300, 1.5) as "not valid
                // JSON", saying nowhere which field; every number a method takes is an integer.
                throw PoolError.invalidParameter(field, "must be an integer (a whole number of at most 19 digits)")
            }
            throw PoolController.parameterError(error)
        }
    }

    /// The message as a tree when it is plain JSON (`PlainJSONParser`): decoded from it, a call
    /// reads as Foundation reads it, in a fraction of the time; nil sends it to Foundation.
    private static func plainTree(of message: ByteBuffer) -> JSONValue? {
        guard let tree = message.withUnsafeReadableBytes({ PlainJSONParser.parse($0) }), case .object = tree else { return nil }
        return tree
    }

    /// The first parameter (in name order) whose value is a number but not an integer.
    private static func firstNonIntegerNumber(in message: ByteBuffer, decoder: JSONDecoder) -> String? {
        guard let envelope = try? decoder.decode(VarlinkParametersEnvelope<[String: JSONValue]>.self, from: message),
              let fields = envelope.parameters else { return nil }
        return fields.keys.sorted().first { key in
            if case .number(let value) = fields[key]! { return Int(exactly: value) == nil }
            return false
        }
    }

    /// Where the first byte that is not part of valid UTF-8 is, or nil when all of it is valid.
    public static func firstInvalidUTF8Offset(in bytes: UnsafeRawBufferPointer) -> Int? {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    static func explain(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case DecodingError.keyNotFound(let key, _):
            return "missing \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
