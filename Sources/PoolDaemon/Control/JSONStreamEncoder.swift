import NIOCore
import PoolProtocol

/// Encodes an `Encodable` value as JSON text for a `ByteBuffer`, in one pass: every reply
/// the daemon sends goes through here. Foundation's JSONEncoder builds a tree of boxed values first
/// and then writes it, which made encoding a Run's reply about a tenth of the event loop's time per
/// call; this writes each value as `encode(to:)` hands it over.
///
/// The text is what JSONEncoder (with `.withoutEscapingSlashes`) writes, but for the order of keys,
/// which is the order the value encodes them in (JSON objects have none). A value that uses what a
/// stream cannot follow (`superEncoder`, a second value in a single-value container, a value that
/// encodes nothing) makes `encode` return nil, and the caller encodes it with Foundation instead.
enum JSONStreamEncoder {
    /// The value's JSON text in a new buffer; nil when the
    /// value must be encoded another way. Throws what the value's `encode(to:)` throws, and for a
    /// non-finite number (which JSON cannot hold).
    static func encode<T: Encodable>(_ value: T, allocator: ByteBufferAllocator) throws -> ByteBuffer? {
        let writer = Writer()
        do {
            try writer.encodeValue(value)
        } catch is Unsupported {
            return nil
        }
        return writer.unsupported ? nil : writer.buffer.byteBuffer(allocator: allocator)
    }

    /// The value's JSON text as `encode` writes it, and where in it the value of the member `key`
    /// of the outermost object is (the first, if the value encodes it more than once): a leaf
    /// value there (a number) can be replaced in the text without encoding the rest again. Nil
    /// when the value must be encoded another way or has no such member.
    static func encode<T: Encodable>(_ value: T, locating key: String, allocator: ByteBufferAllocator) throws -> (text: ByteBuffer, member: Range<Int>)? {
        let writer = Writer()
        writer.sought = key
        do {
            try writer.encodeValue(value)
        } catch is Unsupported {
            return nil
        }
        guard !writer.unsupported, let member = writer.soughtRange else { return nil }
        return (writer.buffer.byteBuffer(allocator: allocator), member)
    }

    /// The varlink reply of a job's record (`VarlinkReply(parameters: JobReply(job: record),
    /// continues:)`), with the NUL that ends it: the bytes `encode` writes for that reply, without
    /// the two generic wrappers, each a copy of the record, around it.
    static func jobReply(_ record: JobRecord, continues: Bool, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let writer = Writer()
        writer.buffer.writeStaticString("{\"parameters\":{\"job\":")
        try writer.writeRecord(record)
        writer.buffer.writeStaticString(continues ? "},\"continues\":true}" : "}}")
        writer.buffer.writeInteger(0)
        return writer.buffer.byteBuffer(allocator: allocator)
    }

    /// A number as `encode` writes it (and JSONEncoder): 5 rather than 5.0; otherwise the shortest
    /// text that reads back the same. Throws for a non-finite one, which JSON cannot hold.
    static func writeNumber(_ value: Double, to buffer: inout ByteBuffer) throws {
        buffer.writeString(try numberText(value))
    }

    private static func numberText(_ value: Double) throws -> String {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) cannot be written as JSON"))
        }
        return value.rounded() == value && abs(value) < 9.0e15 ? String(Int64(value)) : String(value)
    }

    /// The text as it is written: bytes appended to an array, each append far cheaper than a
    /// ByteBuffer's write (which checks its capacity and that it is not shared, per call: most of
    /// the encoder's time went there, a few bytes at a time), copied into a ByteBuffer once.
    struct TextBytes {
        private var bytes: [UInt8] = []

        init() {
            bytes.reserveCapacity(512)
        }

        var writerIndex: Int { bytes.count }

        mutating func writeInteger(_ byte: UInt8) {
            bytes.append(byte)
        }

        mutating func writeStaticString(_ text: StaticString) {
            text.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }

        mutating func writeString(_ text: String) {
            bytes.append(contentsOf: text.utf8)
        }

        mutating func writeBytes(_ source: UnsafeBufferPointer<UInt8>) {
            bytes.append(contentsOf: source)
        }

        /// An integer in decimal, as `String(value)` writes it, without making the string.
        mutating func writeDecimal(negative: Bool, magnitude: UInt64) {
            bytes.appendDecimal(magnitude: magnitude, negative: negative)
        }

        func byteBuffer(allocator: ByteBufferAllocator) -> ByteBuffer {
            // A byte to spare: a varlink reply ends with a NUL, which would reallocate a full buffer.
            var buffer = allocator.buffer(capacity: bytes.count + 1)
            buffer.writeBytes(bytes)
            return buffer
        }
    }

    struct Unsupported: Error {}

    /// The text so far and the containers open in it, innermost last.
    final class Writer {
        // Unchecked: every byte written is an access to these, and the runtime's check of each
        // (swift_beginAccess) cost more than the writes. A writer is one encode's, on one thread,
        // and no access to them spans another.
        @exclusivity(unchecked) var buffer = TextBytes()
        /// Per open container: the byte that closes it, and whether it holds an element yet.
        @exclusivity(unchecked) var open: [(closer: UInt8, hasElement: Bool)] = []
        var unsupported = false
        /// The member of the outermost object whose value's place `soughtRange` records.
        var sought: String?
        var soughtRange: Range<Int>?

        init() {}

        /// Closes the containers opened inside the one at `depth` (nested containers whose end is
        /// known only when their parent goes on).
        func closeAbove(_ depth: Int) {
            while open.count > depth + 1 {
                buffer.writeInteger(open.removeLast().closer)
            }
        }

        /// Starts an element of the container at `depth`: a comma after the first.
        func beginElement(at depth: Int) {
            closeAbove(depth)
            if open[depth].hasElement { buffer.writeInteger(UInt8(ascii: ",")) }
            open[depth].hasElement = true
        }

        func beginKey(_ key: String, at depth: Int) {
            beginElement(at: depth)
            writeString(key)
            buffer.writeInteger(UInt8(ascii: ":"))
        }

        func openContainer(_ opener: UInt8, closer: UInt8) -> Int {
            buffer.writeInteger(opener)
            open.append((closer, false))
            return open.count - 1
        }

        func encodeValue<T: Encodable>(_ value: T) throws {
            // The common leaves without a trip through `encode(to:)` (a comparison of metadata,
            // not a dynamic cast).
            if T.self == String.self {
                writeString(unsafeBitCast(value, to: String.self))
            } else if T.self == Int.self {
                writeInteger(unsafeBitCast(value, to: Int.self))
            } else if T.self == Bool.self {
                writeBool(unsafeBitCast(value, to: Bool.self))
            } else if T.self == Double.self {
                try writeDouble(unsafeBitCast(value, to: Double.self))
            } else if T.self == JSONValue.self {
                // Jobs' parameters and results: a tree written as it is walked.
                try writeJSON(unsafeBitCast(value, to: JSONValue.self))
            } else if T.self == JobRecord.self {
                try writeRecord(unsafeBitCast(value, to: JobRecord.self))
            } else {
                let encoder = StreamEncoder(writer: self)
                try value.encode(to: encoder)
                try encoder.finish()
            }
        }

        /// As JobRecord's synthesized `encode(to:)` has it (its members in order, nil ones left
        /// out), written member by member: through the keyed container, with a generic call and a
        /// metadata lookup per optional member, a Run's reply cost a tenth of its daemon time.
        /// Every reply and history row with a job in it is one of these.
        func writeRecord(_ record: JobRecord) throws {
            buffer.writeStaticString("{\"id\":")
            writeInteger(record.id)
            buffer.writeStaticString(",\"kind\":")
            writeString(record.kind)
            buffer.writeStaticString(",\"state\":")
            writeString(record.state.rawValue)
            buffer.writeStaticString(",\"parameters\":")
            try writeJSON(record.parameters)
            buffer.writeStaticString(",\"slots\":[")
            for (index, slot) in record.slots.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                writeInteger(slot)
            }
            buffer.writeStaticString("],\"submittedAt\":")
            writeString(record.submittedAt)
            optionalMember(",\"startedAt\":", record.startedAt)
            optionalMember(",\"finishedAt\":", record.finishedAt)
            if let progress = record.progress {
                buffer.writeStaticString(",\"progress\":")
                writeProgress(progress)
            }
            if let result = record.result {
                buffer.writeStaticString(",\"result\":")
                try writeJSON(result)
            }
            optionalMember(",\"error\":", record.error)
            if let log = record.log {
                buffer.writeStaticString(",\"log\":[")
                for (index, line) in log.enumerated() {
                    if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    writeString(line)
                }
                buffer.writeInteger(UInt8(ascii: "]"))
            }
            optionalMember(",\"logOffset\":", record.logOffset)
            optionalMember(",\"waiting\":", record.waiting)
            buffer.writeInteger(UInt8(ascii: "}"))
        }

        /// As JobProgress's synthesized `encode(to:)` has it.
        private func writeProgress(_ progress: JobProgress) {
            buffer.writeStaticString("{\"done\":")
            writeInteger(progress.done)
            buffer.writeStaticString(",\"total\":")
            writeInteger(progress.total)
            optionalMember(",\"queueDepth\":", progress.queueDepth)
            optionalMember(",\"waiting\":", progress.waiting)
            optionalMember(",\"woken\":", progress.woken)
            optionalMember(",\"text\":", progress.text)
            buffer.writeInteger(UInt8(ascii: "}"))
        }

        /// A member that is left out when nil (`encodeIfPresent`), its comma and key in `prefix`.
        private func optionalMember(_ prefix: StaticString, _ value: String?) {
            guard let value else { return }
            buffer.writeStaticString(prefix)
            writeString(value)
        }

        private func optionalMember(_ prefix: StaticString, _ value: Int?) {
            guard let value else { return }
            buffer.writeStaticString(prefix)
            writeInteger(value)
        }

        /// As `JSONValue.encode(to:)` has it.
        func writeJSON(_ value: JSONValue) throws {
            switch value {
            case .null: buffer.writeStaticString("null")
            case .bool(let value): writeBool(value)
            case .number(let value): try writeDouble(value)
            case .string(let value): writeString(value)
            case .array(let elements):
                buffer.writeInteger(UInt8(ascii: "["))
                for (index, element) in elements.enumerated() {
                    if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    try writeJSON(element)
                }
                buffer.writeInteger(UInt8(ascii: "]"))
            case .object(let members):
                buffer.writeInteger(UInt8(ascii: "{"))
                var first = true
                for (key, member) in members {
                    if !first { buffer.writeInteger(UInt8(ascii: ",")) }
                    first = false
                    writeString(key)
                    buffer.writeInteger(UInt8(ascii: ":"))
                    try writeJSON(member)
                }
                buffer.writeInteger(UInt8(ascii: "}"))
            }
        }

        func writeInteger<I: FixedWidthInteger>(_ value: I) {
            // Every integer type's values are an Int64's or a UInt64's.
            if let value = Int64(exactly: value) {
                buffer.writeDecimal(negative: value < 0, magnitude: value.magnitude)
            } else {
                buffer.writeDecimal(negative: false, magnitude: UInt64(value))
            }
        }

        func writeBool(_ value: Bool) {
            if value { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
        }

        func writeDouble(_ value: Double) throws {
            // As `numberText`, a whole number without its string.
            if value.rounded() == value && abs(value) < 9.0e15 {
                writeInteger(Int64(value))
            } else {
                buffer.writeString(try JSONStreamEncoder.numberText(value))
            }
        }

        func writeString(_ string: String) {
            buffer.writeInteger(UInt8(ascii: "\""))
            var string = string
            string.withUTF8 { bytes in
                if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                    buffer.writeBytes(bytes)
                    return
                }
                for byte in bytes {
                    switch byte {
                    case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                    case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                    case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                    case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                    case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                    case 0x08: buffer.writeStaticString("\\b")
                    case 0x0C: buffer.writeStaticString("\\f")
                    case ..<0x20:
                        let hex: [UInt8] = Array("0123456789abcdef".utf8)
                        buffer.writeStaticString("\\u00")
                        buffer.writeInteger(hex[Int(byte >> 4)])
                        buffer.writeInteger(hex[Int(byte & 0xF)])
                    default: buffer.writeInteger(byte)
                    }
                }
            }
            buffer.writeInteger(UInt8(ascii: "\""))
        }
    }

    /// The encoder one value is encoded with: it opens at most one container of its own.
    final class StreamEncoder: Encoder {
        let writer: Writer
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        /// The depth of the container this value opened; nil until it opens one.
        private var depth: Int?
        private var isKeyed = false
        private var wroteSingleValue = false

        init(writer: Writer) {
            self.writer = writer
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if let depth, isKeyed { return KeyedEncodingContainer(KeyedContainer<Key>(writer: writer, depth: depth)) }
            guard depth == nil, !wroteSingleValue else {
                writer.unsupported = true
                return KeyedEncodingContainer(KeyedContainer<Key>(writer: writer, depth: depth ?? 0))
            }
            let depth = writer.openContainer(UInt8(ascii: "{"), closer: UInt8(ascii: "}"))
            self.depth = depth
            isKeyed = true
            return KeyedEncodingContainer(KeyedContainer<Key>(writer: writer, depth: depth))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            guard depth == nil, !wroteSingleValue else {
                writer.unsupported = true
                return UnkeyedContainer(writer: writer, depth: depth ?? 0)
            }
            let depth = writer.openContainer(UInt8(ascii: "["), closer: UInt8(ascii: "]"))
            self.depth = depth
            return UnkeyedContainer(writer: writer, depth: depth)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            if depth != nil { writer.unsupported = true }
            return SingleValueContainer(encoder: self)
        }

        /// A single value is written once.
        func writeSingleValue(_ body: () throws -> Void) throws {
            guard !wroteSingleValue, depth == nil else { throw Unsupported() }
            wroteSingleValue = true
            try body()
        }

        /// The value's `encode(to:)` returned: its container (and any nested in it) ends.
        func finish() throws {
            if let depth {
                writer.closeAbove(depth)
                writer.buffer.writeInteger(writer.open.removeLast().closer)
            } else if !wroteSingleValue {
                throw Unsupported()
            }
        }
    }

    struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let writer: Writer
        let depth: Int
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) throws {
            writer.beginKey(key.stringValue, at: depth)
            writer.buffer.writeStaticString("null")
        }

        /// A member: its key, then what `write` writes (whose place is kept when it is the one sought).
        private func member(_ key: Key, _ write: () throws -> Void) throws {
            let name = key.stringValue
            writer.beginKey(name, at: depth)
            guard depth == 0, writer.soughtRange == nil, let sought = writer.sought, name == sought else {
                return try write()
            }
            let start = writer.buffer.writerIndex
            try write()
            writer.soughtRange = start..<writer.buffer.writerIndex
        }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try member(key) { try writer.encodeValue(value) }
        }

        // Each leaf type's own, and `encodeIfPresent` of each: the protocol's defaults would reach
        // them through its witness table and the generic `encode` (a synthesized `encode(to:)`
        // calls these for every member).
        mutating func encode(_ value: Bool, forKey key: Key) throws { try member(key) { writer.writeBool(value) } }
        mutating func encode(_ value: String, forKey key: Key) throws { try member(key) { writer.writeString(value) } }
        mutating func encode(_ value: Double, forKey key: Key) throws { try member(key) { try writer.writeDouble(value) } }
        mutating func encode(_ value: Float, forKey key: Key) throws { try member(key) { try writer.writeDouble(Double(value)) } }
        mutating func encode(_ value: Int, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int8, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int16, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try member(key) { writer.writeInteger(value) } }

        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            writer.beginKey(key.stringValue, at: depth)
            let nested = writer.openContainer(UInt8(ascii: "{"), closer: UInt8(ascii: "}"))
            return KeyedEncodingContainer(KeyedContainer<NestedKey>(writer: writer, depth: nested))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            writer.beginKey(key.stringValue, at: depth)
            return UnkeyedContainer(writer: writer, depth: writer.openContainer(UInt8(ascii: "["), closer: UInt8(ascii: "]")))
        }

        mutating func superEncoder() -> any Encoder {
            writer.unsupported = true
            return StreamEncoder(writer: writer)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            writer.unsupported = true
            return StreamEncoder(writer: writer)
        }
    }

    struct UnkeyedContainer: UnkeyedEncodingContainer {
        let writer: Writer
        let depth: Int
        var codingPath: [any CodingKey] { [] }
        private(set) var count = 0

        init(writer: Writer, depth: Int) {
            self.writer = writer
            self.depth = depth
        }

        mutating func encodeNil() throws {
            writer.beginElement(at: depth)
            writer.buffer.writeStaticString("null")
            count += 1
        }

        mutating func encode<T: Encodable>(_ value: T) throws {
            writer.beginElement(at: depth)
            try writer.encodeValue(value)
            count += 1
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            writer.beginElement(at: depth)
            count += 1
            let nested = writer.openContainer(UInt8(ascii: "{"), closer: UInt8(ascii: "}"))
            return KeyedEncodingContainer(KeyedContainer<NestedKey>(writer: writer, depth: nested))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            writer.beginElement(at: depth)
            count += 1
            return UnkeyedContainer(writer: writer, depth: writer.openContainer(UInt8(ascii: "["), closer: UInt8(ascii: "]")))
        }

        mutating func superEncoder() -> any Encoder {
            writer.unsupported = true
            return StreamEncoder(writer: writer)
        }
    }

    struct SingleValueContainer: SingleValueEncodingContainer {
        let encoder: StreamEncoder
        var codingPath: [any CodingKey] { [] }
        private var writer: Writer { encoder.writer }

        init(encoder: StreamEncoder) {
            self.encoder = encoder
        }

        mutating func encodeNil() throws { try encoder.writeSingleValue { writer.buffer.writeStaticString("null") } }
        mutating func encode(_ value: Bool) throws { try encoder.writeSingleValue { writer.writeBool(value) } }
        mutating func encode(_ value: String) throws { try encoder.writeSingleValue { writer.writeString(value) } }
        mutating func encode(_ value: Double) throws { try encoder.writeSingleValue { try writer.writeDouble(value) } }
        mutating func encode(_ value: Float) throws { try encoder.writeSingleValue { try writer.writeDouble(Double(value)) } }
        mutating func encode(_ value: Int) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: Int8) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: Int16) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: Int32) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: Int64) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt8) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt16) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt32) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt64) throws { try encoder.writeSingleValue { writer.writeInteger(value) } }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try encoder.writeSingleValue { try writer.encodeValue(value) }
        }
    }
}
