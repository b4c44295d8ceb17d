import Foundation
import PoolProtocol
import Testing

/// The interface description that `GetInterfaceDescription` returns (and generic varlink clients
/// parse) against the Codable types the daemon and poolctl send and read: every field of every
/// type, parameter and reply is in the description with its type and optionality, and every field
/// the description names is in the type. A field added to one and not the other fails here.
struct InterfaceDescriptionTests {
    /// The description's named types, and what stands for them in Swift.
    static let types: [String: any (Decodable & Sendable).Type] = [
        "Worker": WorkerInfo.self, "Progress": JobProgress.self, "Drain": DrainInfo.self, "Job": JobRecord.self,
        "History": HistoryStatus.self,
    ]

    /// Each method's parameters and reply (nil: none, `()` in the description).
    static let methods: [String: (in: (any (Decodable & Sendable).Type)?, out: (any (Decodable & Sendable).Type)?)] = [
        "Status": (nil, StatusReply.self), "Run": (RunRequest.self, JobReply.self),
        "ListJobs": (ListJobsRequest.self, ListJobsReply.self), "GetJob": (JobIDRequest.self, JobReply.self),
        "Cancel": (JobIDRequest.self, JobReply.self), "Resize": (ResizeRequest.self, ResizeReply.self),
        "RestartWorkers": (RestartWorkersRequest.self, RestartWorkersReply.self), "Shutdown": (nil, nil),
        "Reload": (nil, ReloadReply.self),
    ]

    static let serviceMethods: [String: (in: (any (Decodable & Sendable).Type)?, out: (any (Decodable & Sendable).Type)?)] = [
        "GetInfo": (nil, ServiceInfo.self),
        "GetInterfaceDescription": (InterfaceDescriptionRequest.self, InterfaceDescriptionReply.self),
    ]

    /// The Swift types' names in the description.
    static var names: [String: String] {
        Dictionary(uniqueKeysWithValues: types.map { (String(describing: $0.value), $0.key) })
    }

    @Test func everyTypeMatchesItsDescription() throws {
        let idl = try InterfaceDefinition(PoolInterface.description)
        #expect(Set(idl.types.keys) == Set(Self.types.keys), "types described but not mapped, or mapped but not described")
        for (name, type) in Self.types {
            let fields = try WireShape.fields(of: type, names: Self.names)
            #expect(fields == idl.types[name], "type \(name) (\(type)): \(Self.difference(fields, idl.types[name] ?? [:]))")
        }
    }

    @Test func everyMethodsParametersAndReplyMatchTheirDescription() throws {
        for (description, methods) in [(PoolInterface.description, Self.methods), (PoolInterface.serviceDescription, Self.serviceMethods)] {
            let idl = try InterfaceDefinition(description)
            #expect(Set(idl.methods.keys) == Set(methods.keys), "methods described but not mapped, or mapped but not described")
            for (name, types) in methods {
                let described = try #require(idl.methods[name], "method \(name) is not described")
                let input = try types.in.map { try WireShape.fields(of: $0, names: Self.names) } ?? [:]
                let output = try types.out.map { try WireShape.fields(of: $0, names: Self.names) } ?? [:]
                #expect(input == described.in, "method \(name)'s parameters: \(Self.difference(input, described.in))")
                #expect(output == described.out, "method \(name)'s reply: \(Self.difference(output, described.out))")
            }
        }
        #expect(Set(PoolInterface.Method.allCases.map(\.rawValue)) == Set(Self.methods.keys))
    }

    /// What differs between a Codable type's fields and the description's.
    static func difference(_ type: [String: String], _ described: [String: String]) -> String {
        Set(type.keys).union(described.keys).sorted().compactMap { field in
            type[field] == described[field] ? nil : "\(field): \(type[field] ?? "absent") in the type, \(described[field] ?? "absent") in the description"
        }.joined(separator: "; ")
    }

    /// Errors share one Codable type whose fields are all optional (each error has some of them):
    /// every error's field is one of it, of the same type, and each of its fields is some error's.
    @Test func everyErrorsParametersAreFieldsOfPoolError() throws {
        let errors = try [PoolInterface.description, PoolInterface.serviceDescription].flatMap { try InterfaceDefinition($0).errors }
        let parameters = try WireShape.fields(of: PoolError.Parameters.self, names: Self.names)
        var used: Set<String> = []
        for (name, fields) in errors {
            for (field, type) in fields {
                used.insert(field)
                #expect(parameters[field] == "?" + type.trimmingPrefix("?"), "error \(name)'s \(field): \(type) in the description, \(parameters[field] ?? "absent") in PoolError.Parameters")
            }
        }
        #expect(Set(parameters.keys) == used, "PoolError.Parameters fields no error describes: \(Set(parameters.keys).subtracting(used))")
    }

    /// The test's own parts: a type's shape is read as its decoder asks for it, and the parser
    /// reads fields, optionality, arrays and named types.
    @Test func readsShapesAndDescriptions() throws {
        struct Sample: Decodable {
            var count: Int
            var name: String?
            var ratio: Double
            var slots: [Int]?
            var workers: [WorkerInfo]
            var state: JobState
            var anything: JSONValue
        }
        let fields = try WireShape.fields(of: Sample.self, names: Self.names)
        #expect(fields == ["count": "int", "name": "?string", "ratio": "float", "slots": "?[]int", "workers": "[]Worker",
                           "state": "string", "anything": "object"])
        let idl = try InterfaceDefinition("""
            # a comment, (with parentheses)
            interface a.b
            type T (
              # about x
              x: int,
              y: ?[]T
            )
            method M(a: string) -> ()
            error E (reason: string)
            """)
        #expect(idl.types == ["T": ["x": "int", "y": "?[]T"]])
        #expect(idl.methods["M"]?.in == ["a": "string"] && idl.methods["M"]?.out == [:])
        #expect(idl.errors == ["E": ["reason": "string"]])
    }
}

/// The parts of a varlink interface description this interface uses: named types, methods and
/// errors, each a list of `name: type` fields (no anonymous structs or enums).
struct InterfaceDefinition {
    var types: [String: [String: String]] = [:]
    var methods: [String: (in: [String: String], out: [String: String])] = [:]
    var errors: [String: [String: String]] = [:]

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    init(_ text: String) throws {
        // Comments run to the end of their line.
        let body = text.split(separator: "\n").map { line in line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0] }
            .joined(separator: " ")
        var rest = Substring(body)
        func word() -> String {
            rest = rest.drop(while: \.isWhitespace)
            let token = rest.prefix { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
            rest = rest.dropFirst(token.count)
            return String(token)
        }
        func fields() throws -> [String: String] {
            rest = rest.drop(while: \.isWhitespace)
            guard rest.first == "(", let close = rest.firstIndex(of: ")") else { throw Malformed(description: "no field list at \(rest.prefix(40))") }
            let list = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            var result: [String: String] = [:]
            for field in list.split(separator: ",") where !field.allSatisfy(\.isWhitespace) {
                let parts = field.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, result[parts[0]] == nil else { throw Malformed(description: "bad field '\(field)'") }
                result[parts[0]] = parts[1]
            }
            return result
        }
        while true {
            switch word() {
            case "": return
            case "interface": _ = word()
            case "type": types[word()] = try fields()
            case "error": errors[word()] = try fields()
            case "method":
                let name = word()
                let input = try fields()
                rest = rest.drop(while: \.isWhitespace)
                guard rest.hasPrefix("->") else { throw Malformed(description: "method \(name) has no ->") }
                rest = rest.dropFirst(2)
                methods[name] = (input, try fields())
            case let other: throw Malformed(description: "unexpected '\(other)'")
            }
        }
    }
}

/// A Decodable type's wire shape in varlink's notation, learnt by decoding it from a decoder that
/// has no data: it answers every field the type asks for (with a zero, an empty string, one
/// element, an enum's first case) and notes the field's name, type and whether it may be absent
/// (`decodeIfPresent`).
enum WireShape {
    /// `names`: the Swift name of each struct the description names.
    static func fields(of type: any Decodable.Type, names: [String: String]) throws -> [String: String] {
        let node = Node(names: names)
        _ = try type.init(from: ShapeDecoder(node: node))
        guard case .record(let fields) = node.shape else { throw InterfaceDefinition.Malformed(description: "\(type) is no struct") }
        return fields
    }

    /// A value of `type` and its type in the description.
    static func describe<T: Decodable>(_ type: T.Type, names: [String: String]) throws -> (value: T, type: String) {
        if T.self == JSONValue.self, let value = JSONValue.object([:]) as? T { return (value, "object") }
        if let enumeration = T.self as? any CaseIterable.Type, let value = firstCase(of: enumeration) as? T {
            guard (value as? any RawRepresentable)?.rawValue is String else {
                throw InterfaceDefinition.Malformed(description: "\(T.self) is an enum not sent as a string")
            }
            return (value, "string")
        }
        let node = Node(names: names)
        let value = try T(from: ShapeDecoder(node: node))
        switch node.shape {
        case .scalar(let name): return (value, name)
        case .list(let element): return (value, "[]" + element)
        case .record:
            let name = String(describing: T.self)
            guard let described = names[name] else { throw InterfaceDefinition.Malformed(description: "\(name) has no named type in the description") }
            return (value, described)
        case nil: throw InterfaceDefinition.Malformed(description: "\(T.self) asked for no value")
        }
    }

    private static func firstCase<E: CaseIterable>(of type: E.Type) -> Any? { E.allCases.first }

    final class Node {
        enum Shape { case scalar(String), list(String), record([String: String]) }
        let names: [String: String]
        var shape: Shape?
        init(names: [String: String]) { self.names = names }

        func add(_ key: some CodingKey, _ type: String) {
            guard case .record(var fields) = shape else { return }
            fields[key.stringValue] = type
            shape = .record(fields)
        }
    }

    struct ShapeDecoder: Decoder {
        let node: Node
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] = [:]

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            node.shape = .record([:])
            return KeyedDecodingContainer(Keyed(node: node))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(node: node) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(node: node) }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let node: Node
        var codingPath: [any CodingKey] = []
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let (value, described) = try WireShape.describe(type, names: node.names)
            node.add(key, described)
            return value
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            let (value, described) = try WireShape.describe(type, names: node.names)
            node.add(key, "?" + described)
            return value
        }

        // The primitives go through the generic path, which describes them.
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Wrapped<Bool>.self, forKey: key).value }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(Wrapped<String>.self, forKey: key).value }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Wrapped<Double>.self, forKey: key).value }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(Wrapped<Float>.self, forKey: key).value }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Wrapped<Int>.self, forKey: key).value }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(Wrapped<Int8>.self, forKey: key).value }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(Wrapped<Int16>.self, forKey: key).value }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Wrapped<Int32>.self, forKey: key).value }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Wrapped<Int64>.self, forKey: key).value }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(Wrapped<UInt>.self, forKey: key).value }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(Wrapped<UInt8>.self, forKey: key).value }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(Wrapped<UInt16>.self, forKey: key).value }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(Wrapped<UInt32>.self, forKey: key).value }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(Wrapped<UInt64>.self, forKey: key).value }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeIfPresent(Wrapped<Bool>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeIfPresent(Wrapped<String>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeIfPresent(Wrapped<Double>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try decodeIfPresent(Wrapped<Float>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeIfPresent(Wrapped<Int>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try decodeIfPresent(Wrapped<Int8>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try decodeIfPresent(Wrapped<Int16>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try decodeIfPresent(Wrapped<Int32>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try decodeIfPresent(Wrapped<Int64>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try decodeIfPresent(Wrapped<UInt>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try decodeIfPresent(Wrapped<UInt8>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try decodeIfPresent(Wrapped<UInt16>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try decodeIfPresent(Wrapped<UInt32>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try decodeIfPresent(Wrapped<UInt64>.self, forKey: key)?.value }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw InterfaceDefinition.Malformed(description: "nested containers are not used on the wire")
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw InterfaceDefinition.Malformed(description: "nested containers are not used on the wire")
        }
        func superDecoder() throws -> any Decoder { ShapeDecoder(node: node) }
        func superDecoder(forKey key: Key) throws -> any Decoder { ShapeDecoder(node: node) }
    }

    /// A primitive decoded as any Decodable, so that the keyed container's generic path describes it.
    struct Wrapped<T: Decodable>: Decodable {
        let value: T
        init(from decoder: any Decoder) throws { value = try T(from: decoder) }
    }

    /// One element: enough to learn the element's type.
    struct Unkeyed: UnkeyedDecodingContainer {
        let node: Node
        var codingPath: [any CodingKey] = []
        var count: Int? { 1 }
        var isAtEnd: Bool { currentIndex > 0 }
        var currentIndex = 0
        mutating func decodeNil() throws -> Bool { false }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (value, described) = try WireShape.describe(type, names: node.names)
            node.shape = .list(described)
            currentIndex += 1
            return value
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool { try decode(Wrapped<Bool>.self).value }
        mutating func decode(_ type: String.Type) throws -> String { try decode(Wrapped<String>.self).value }
        mutating func decode(_ type: Double.Type) throws -> Double { try decode(Wrapped<Double>.self).value }
        mutating func decode(_ type: Float.Type) throws -> Float { try decode(Wrapped<Float>.self).value }
        mutating func decode(_ type: Int.Type) throws -> Int { try decode(Wrapped<Int>.self).value }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try decode(Wrapped<Int8>.self).value }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try decode(Wrapped<Int16>.self).value }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try decode(Wrapped<Int32>.self).value }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try decode(Wrapped<Int64>.self).value }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try decode(Wrapped<UInt>.self).value }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(Wrapped<UInt8>.self).value }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(Wrapped<UInt16>.self).value }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(Wrapped<UInt32>.self).value }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(Wrapped<UInt64>.self).value }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            throw InterfaceDefinition.Malformed(description: "nested containers are not used on the wire")
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            throw InterfaceDefinition.Malformed(description: "nested containers are not used on the wire")
        }
        mutating func superDecoder() throws -> any Decoder { ShapeDecoder(node: node) }
    }

    struct Single: SingleValueDecodingContainer {
        let node: Node
        var codingPath: [any CodingKey] = []
        func decodeNil() -> Bool { false }

        func decode(_ type: Bool.Type) throws -> Bool { scalar("bool", false) }
        func decode(_ type: String.Type) throws -> String { scalar("string", "") }
        func decode(_ type: Double.Type) throws -> Double { scalar("float", 0) }
        func decode(_ type: Float.Type) throws -> Float { scalar("float", 0) }
        func decode(_ type: Int.Type) throws -> Int { scalar("int", 0) }
        func decode(_ type: Int8.Type) throws -> Int8 { scalar("int", 0) }
        func decode(_ type: Int16.Type) throws -> Int16 { scalar("int", 0) }
        func decode(_ type: Int32.Type) throws -> Int32 { scalar("int", 0) }
        func decode(_ type: Int64.Type) throws -> Int64 { scalar("int", 0) }
        func decode(_ type: UInt.Type) throws -> UInt { scalar("int", 0) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { scalar("int", 0) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { scalar("int", 0) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { scalar("int", 0) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { scalar("int", 0) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try WireShape.describe(type, names: node.names).value }

        private func scalar<T>(_ name: String, _ value: T) -> T {
            node.shape = .scalar(name)
            return value
        }
    }
}
