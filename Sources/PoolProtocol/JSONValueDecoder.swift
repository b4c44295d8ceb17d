import Foundation

/// Decodes a typed value straight from a `JSONValue` tree, without writing it out as JSON text and
/// parsing that (`JSONValue.decode`): the daemon sums up every job's result this way when it ends.
/// Strict: it succeeds only where `JSONDecoder` gives the same value (a number is an integer only
/// when it is a whole one it holds exactly; `Float`, `Date`, `Data`, `URL` and `Decimal`, which
/// `JSONDecoder` treats specially, are refused). Its errors say little: a caller that needs the
/// reason falls back to `JSONValue.decode`.
public enum JSONValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try TreeDecoder.decode(T.self, from: value, codingPath: [])
    }

    fileprivate static func mismatch(_ type: Any.Type, _ codingPath: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "not decoded from the tree"))
    }

    fileprivate static func integer<I: FixedWidthInteger>(_ value: JSONValue, codingPath: @autoclosure () -> [any CodingKey]) throws -> I {
        // Beyond 9e15 JSONValue writes a whole number in floating-point form, which JSONDecoder may
        // not take as an integer.
        guard case .number(let number) = value, abs(number) < 9.0e15, let integer = I(exactly: number) else {
            throw mismatch(I.self, codingPath())
        }
        return integer
    }

    private struct TreeDecoder: Decoder {
        let value: JSONValue
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        /// The path is made only when it is needed (a nested value, an error): most members are
        /// leaves, and an array per member was most of what decoding one cost.
        static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, codingPath: @autoclosure () -> [any CodingKey]) throws -> T {
            // A JSONValue member (a Run's parameters) is the subtree itself. Comparisons of
            // metadata, not dynamic casts (each of which cost more than decoding a member).
            if T.self == JSONValue.self { return unsafeBitCast(value, to: T.self) }
            if T.self == Float.self || T.self == Date.self || T.self == Data.self || T.self == URL.self || T.self == Decimal.self {
                throw mismatch(type, codingPath())
            }
            return try T(from: TreeDecoder(value: value, codingPath: codingPath()))
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let members) = value else { throw mismatch([String: Any].self, codingPath) }
            return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let elements) = value else { throw mismatch([Any].self, codingPath) }
            return UnkeyedContainer(elements: elements, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            SingleContainer(value: value, parentPath: codingPath)
        }
    }

    private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [String: JSONValue]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

        private func member(_ key: Key) throws -> JSONValue {
            guard let value = members[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \(key.stringValue)"))
            }
            return value
        }

        private func single(_ key: Key) throws -> SingleContainer {
            SingleContainer(value: try member(key), parentPath: codingPath, key: key)
        }

        /// The member's value unless it is absent or null, as the protocol's `decodeIfPresent`
        /// has it (`contains`, then `decodeNil`, then `decode`: three lookups of the key).
        private func present(_ key: Key) -> SingleContainer? {
            guard let value = members[key.stringValue], value != .null else { return nil }
            return SingleContainer(value: value, parentPath: codingPath, key: key)
        }

        func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try single(key).decode(type) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try single(key).decode(type) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try single(key).decode(type) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try single(key).decode(type) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try single(key).decode(type) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try single(key).decode(type) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try single(key).decode(type) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try single(key).decode(type) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try single(key).decode(type) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try single(key).decode(type) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try single(key).decode(type) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try single(key).decode(type) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try single(key).decode(type) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try single(key).decode(type) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try TreeDecoder.decode(type, from: try member(key), codingPath: codingPath + [key])
        }

        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(key)?.decode(type) }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            try present(key)?.decode(type)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try TreeDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try TreeDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { throw mismatch(Any.self, codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { throw mismatch(Any.self, codingPath) }
    }

    private struct UnkeyedContainer: UnkeyedDecodingContainer {
        let elements: [JSONValue]
        let codingPath: [any CodingKey]
        private(set) var currentIndex = 0
        var count: Int? { elements.count }
        var isAtEnd: Bool { currentIndex >= elements.count }

        init(elements: [JSONValue], codingPath: [any CodingKey]) {
            self.elements = elements
            self.codingPath = codingPath
        }

        private mutating func next() throws -> JSONValue {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the array has ended"))
            }
            defer { currentIndex += 1 }
            return elements[currentIndex]
        }

        private mutating func single() throws -> SingleContainer { SingleContainer(value: try next(), parentPath: codingPath) }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, elements[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool { try single().decode(type) }
        mutating func decode(_ type: String.Type) throws -> String { try single().decode(type) }
        mutating func decode(_ type: Double.Type) throws -> Double { try single().decode(type) }
        mutating func decode(_ type: Float.Type) throws -> Float { try single().decode(type) }
        mutating func decode(_ type: Int.Type) throws -> Int { try single().decode(type) }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try single().decode(type) }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try single().decode(type) }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try single().decode(type) }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try single().decode(type) }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try single().decode(type) }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try single().decode(type) }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try single().decode(type) }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try single().decode(type) }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try single().decode(type) }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try TreeDecoder.decode(type, from: try next(), codingPath: codingPath)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try TreeDecoder(value: try next(), codingPath: codingPath).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try TreeDecoder(value: try next(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { throw mismatch(Any.self, codingPath) }
    }

    private struct SingleContainer: SingleValueDecodingContainer {
        let value: JSONValue
        /// The path without the member's key: the whole is made only for an error.
        let parentPath: [any CodingKey]
        let key: (any CodingKey)?
        var codingPath: [any CodingKey] { key.map { parentPath + [$0] } ?? parentPath }

        init(value: JSONValue, parentPath: [any CodingKey], key: (any CodingKey)? = nil) {
            self.value = value
            self.parentPath = parentPath
            self.key = key
        }

        func decodeNil() -> Bool { value == .null }

        func decode(_ type: Bool.Type) throws -> Bool {
            guard case .bool(let bool) = value else { throw mismatch(type, codingPath) }
            return bool
        }

        func decode(_ type: String.Type) throws -> String {
            guard case .string(let string) = value else { throw mismatch(type, codingPath) }
            return string
        }

        func decode(_ type: Double.Type) throws -> Double {
            guard case .number(let number) = value else { throw mismatch(type, codingPath) }
            return number
        }

        func decode(_ type: Float.Type) throws -> Float { throw mismatch(type, codingPath) }
        func decode(_ type: Int.Type) throws -> Int { try integer(value, codingPath: codingPath) }
        func decode(_ type: Int8.Type) throws -> Int8 { try integer(value, codingPath: codingPath) }
        func decode(_ type: Int16.Type) throws -> Int16 { try integer(value, codingPath: codingPath) }
        func decode(_ type: Int32.Type) throws -> Int32 { try integer(value, codingPath: codingPath) }
        func decode(_ type: Int64.Type) throws -> Int64 { try integer(value, codingPath: codingPath) }
        func decode(_ type: UInt.Type) throws -> UInt { try integer(value, codingPath: codingPath) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(value, codingPath: codingPath) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(value, codingPath: codingPath) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(value, codingPath: codingPath) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(value, codingPath: codingPath) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try TreeDecoder.decode(type, from: value, codingPath: codingPath)
        }
    }
}
