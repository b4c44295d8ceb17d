import Foundation
import PoolProtocol

/// Encodes a value straight into a `JSONValue` tree, the tree `JSONValue(encoding:)` makes by
/// writing JSON text and parsing it back: every job's parameters and result pass through here,
/// and the text round trip cost a trivial job a tenth of its daemon time. The same values as
/// `JSONEncoder` with its defaults: integers and floats are numbers (a non-finite one is an
/// error), nil is null, an absent optional is left out; `Data`, `Date`, `URL` and `Decimal`, which
/// `JSONEncoder` treats specially, go through `JSONValue(encoding:)`.
enum JSONValueEncoder {
    static func encode(_ value: some Encodable) throws -> JSONValue {
        if let leaf = try Node.leaf(value, codingPath: []) { return leaf }
        let node = Node()
        try value.encode(to: TreeEncoder(node: node, codingPath: []))
        return node.value
    }

    /// One value being built: a container holds its leaves as values and a node for each
    /// member that is a container itself (a node per leaf, and a dictionary of nodes mapped
    /// to values at the end, were most of what encoding a result cost).
    fileprivate final class Node {
        var single: JSONValue?
        /// An object's members in the order they were encoded, made a dictionary once at the end
        /// (sized once, each key hashed once; a later member of the same key wins, as it would in
        /// a dictionary filled as they come).
        var object: [(key: String, member: Member)]?
        var array: [Member]?

        /// Room for a typical record's members at once: grown one by one, an array is reallocated
        /// at its second, third and fifth member.
        static func emptyMembers() -> [(key: String, member: Member)] {
            var members: [(key: String, member: Member)] = []
            members.reserveCapacity(8)
            return members
        }

        enum Member {
            case leaf(JSONValue)
            case node(Node)

            var value: JSONValue {
                switch self {
                case .leaf(let value): return value
                case .node(let node): return node.value
                }
            }
        }

        var value: JSONValue {
            if let object { return .object(Dictionary(object.lazy.map { ($0.key, $0.member.value) }, uniquingKeysWith: { $1 })) }
            if let array { return .array(array.map(\.value)) }
            // Nothing encoded (an empty type): JSONEncoder writes `{}` for a nested one.
            return single ?? .object([:])
        }

        /// The member for `value`: a leaf without a node when it is one.
        static func member<T: Encodable>(_ value: T, codingPath: @autoclosure () -> [any CodingKey]) throws -> Member {
            if let leaf = try leaf(value, codingPath: codingPath()) { return .leaf(leaf) }
            let node = Node()
            try value.encode(to: TreeEncoder(node: node, codingPath: codingPath()))
            return .node(node)
        }

        /// The value of a leaf type as its `encode(to:)` would make it, or nil for any other type.
        /// Comparisons of metadata, not dynamic casts (four of which, per value, cost more than
        /// encoding it).
        static func leaf<T: Encodable>(_ value: T, codingPath: @autoclosure () -> [any CodingKey]) throws -> JSONValue? {
            if T.self == Int.self { return .number(Double(unsafeBitCast(value, to: Int.self))) }
            if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
            if T.self == Bool.self { return .bool(unsafeBitCast(value, to: Bool.self)) }
            if T.self == Double.self { return try number(unsafeBitCast(value, to: Double.self), codingPath: codingPath()) }
            // What JSONEncoder treats specially: through JSON text, as it writes them.
            if T.self == Data.self || T.self == Date.self || T.self == URL.self || T.self == Decimal.self {
                return try JSONValue(encoding: value)
            }
            return nil
        }

        static func number<F: BinaryFloatingPoint>(_ value: F, codingPath: @autoclosure () -> [any CodingKey]) throws -> JSONValue {
            guard value.isFinite else {
                throw EncodingError.invalidValue(value, .init(codingPath: codingPath(), debugDescription: "\(value) is not a JSON number"))
            }
            return .number(Double(value))
        }
    }

    private struct TreeEncoder: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if node.object == nil { node.object = Node.emptyMembers() }
            return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if node.array == nil { node.array = [] }
            return UnkeyedContainer(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            SingleContainer(node: node, codingPath: codingPath)
        }
    }

    private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func set(_ value: JSONValue, for key: Key) {
            node.object!.append((key.stringValue, .leaf(value)))
        }

        private func child(for key: Key) -> Node {
            let child = Node()
            node.object!.append((key.stringValue, .node(child)))
            return child
        }

        mutating func encodeNil(forKey key: Key) throws { set(.null, for: key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), for: key) }
        mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), for: key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { set(try Node.number(value, codingPath: codingPath + [key]), for: key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { set(try Node.number(value, codingPath: codingPath + [key]), for: key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { set(.number(Double(value)), for: key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            node.object!.append((key.stringValue, try Node.member(value, codingPath: codingPath + [key])))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            TreeEncoder(node: child(for: key), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            TreeEncoder(node: child(for: key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            TreeEncoder(node: child(for: Key(stringValue: "super")!), codingPath: codingPath)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            TreeEncoder(node: child(for: key), codingPath: codingPath + [key])
        }
    }

    private struct UnkeyedContainer: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { node.array!.count }

        private func append(_ value: JSONValue) {
            node.array!.append(.leaf(value))
        }

        private func appendChild() -> Node {
            let child = Node()
            node.array!.append(.node(child))
            return child
        }

        mutating func encodeNil() throws { append(.null) }
        mutating func encode(_ value: Bool) throws { append(.bool(value)) }
        mutating func encode(_ value: String) throws { append(.string(value)) }
        mutating func encode(_ value: Double) throws { append(try Node.number(value, codingPath: codingPath)) }
        mutating func encode(_ value: Float) throws { append(try Node.number(value, codingPath: codingPath)) }
        mutating func encode(_ value: Int) throws { append(.number(Double(value))) }
        mutating func encode(_ value: Int8) throws { append(.number(Double(value))) }
        mutating func encode(_ value: Int16) throws { append(.number(Double(value))) }
        mutating func encode(_ value: Int32) throws { append(.number(Double(value))) }
        mutating func encode(_ value: Int64) throws { append(.number(Double(value))) }
        mutating func encode(_ value: UInt) throws { append(.number(Double(value))) }
        mutating func encode(_ value: UInt8) throws { append(.number(Double(value))) }
        mutating func encode(_ value: UInt16) throws { append(.number(Double(value))) }
        mutating func encode(_ value: UInt32) throws { append(.number(Double(value))) }
        mutating func encode(_ value: UInt64) throws { append(.number(Double(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            node.array!.append(try Node.member(value, codingPath: codingPath))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            TreeEncoder(node: appendChild(), codingPath: codingPath).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            TreeEncoder(node: appendChild(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            TreeEncoder(node: appendChild(), codingPath: codingPath)
        }
    }

    private struct SingleContainer: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.single = .null }
        mutating func encode(_ value: Bool) throws { node.single = .bool(value) }
        mutating func encode(_ value: String) throws { node.single = .string(value) }
        mutating func encode(_ value: Double) throws { node.single = try Node.number(value, codingPath: codingPath) }
        mutating func encode(_ value: Float) throws { node.single = try Node.number(value, codingPath: codingPath) }
        mutating func encode(_ value: Int) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: Int8) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: Int16) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: Int32) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: Int64) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: UInt) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: UInt8) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: UInt16) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: UInt32) throws { node.single = .number(Double(value)) }
        mutating func encode(_ value: UInt64) throws { node.single = .number(Double(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            if let leaf = try Node.leaf(value, codingPath: codingPath) {
                node.single = leaf
            } else {
                try value.encode(to: TreeEncoder(node: node, codingPath: codingPath))
            }
        }
    }
}
