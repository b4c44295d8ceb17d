/// JSON text written directly, for the job history's columns: Foundation's JSONEncoder went through
/// `Encodable` for every value and took most of the history writer's time (about 14 us a record).
/// The output is what JSONEncoder would accept back (integers as integers, the rule `encode(to:)`
/// follows; strings escaped per RFC 8259; non-finite numbers, which JSON cannot hold, as null).
/// Written as UTF-8 bytes: appending to a String scalar by scalar was most of what remained.
extension JSONValue {
    public var jsonText: String {
        var text: [UInt8] = []
        text.reserveCapacity(64)
        Self.write(self, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    private static func write(_ value: JSONValue, to text: inout [UInt8]) {
        switch value {
        case .null: text.append(contentsOf: "null".utf8)
        case .bool(let value): text.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .number(let value): write(number: value, to: &text)
        case .string(let value): write(string: value, to: &text)
        case .array(let values):
            text.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                write(element, to: &text)
            }
            text.append(UInt8(ascii: "]"))
        case .object(let members):
            text.append(UInt8(ascii: "{"))
            // Sorted, so that equal objects are equal text.
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                write(string: member.key, to: &text)
                text.append(UInt8(ascii: ":"))
                write(member.value, to: &text)
            }
            text.append(UInt8(ascii: "}"))
        }
    }

    private static func write(number: Double, to text: inout [UInt8]) {
        if !number.isFinite {
            text.append(contentsOf: "null".utf8)
        } else if number.rounded() == number, abs(number) < 9.0e15 {
            text.appendDecimal(Int64(number))
        } else {
            // Swift prints the shortest text that reads back as the same Double (1e+300, 0.1).
            text.append(contentsOf: String(number).utf8)
        }
    }

    /// A string's JSON text: bytes from 0x20 up (all of UTF-8's multi-byte sequences among them)
    /// as they are, but for the quote and the backslash.
    private static func write(string: String, to text: inout [UInt8]) {
        text.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): text.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): text.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): text.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): text.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): text.append(contentsOf: #"\t"#.utf8)
            case ..<0x20:
                text.append(contentsOf: #"\u00"#.utf8)
                text.append(hexDigit(byte >> 4))
                text.append(hexDigit(byte & 0xf))
            default: text.append(byte)
            }
        }
        text.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
