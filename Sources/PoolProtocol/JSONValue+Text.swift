/// JSON text written directly, for the job history's columns: Foundation's JSONEncoder went through
/// `Encodable` for every value and took most of the history writer's time (about 14 us a record).
/// The output is what JSONEncoder would accept back (integers as integers, the rule `encode(to:)`
/// follows; strings escaped per RFC 8259; non-finite numbers, which JSON cannot hold, as null).
extension JSONValue {
    public var jsonText: String {
        var text = ""
        Self.write(self, to: &text)
        return text
    }

    private static func write(_ value: JSONValue, to text: inout String) {
        switch value {
        case .null: text += "null"
        case .bool(let value): text += value ? "true" : "false"
        case .number(let value): write(number: value, to: &text)
        case .string(let value): write(string: value, to: &text)
        case .array(let values):
            text += "["
            for (index, element) in values.enumerated() {
                if index > 0 { text += "," }
                write(element, to: &text)
            }
            text += "]"
        case .object(let members):
            text += "{"
            // Sorted, so that equal objects are equal text.
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { text += "," }
                write(string: key, to: &text)
                text += ":"
                write(members[key]!, to: &text)
            }
            text += "}"
        }
    }

    private static func write(number: Double, to text: inout String) {
        if !number.isFinite {
            text += "null"
        } else if number.rounded() == number, abs(number) < 9.0e15 {
            text += String(Int64(number))
        } else {
            // Swift prints the shortest text that reads back as the same Double (1e+300, 0.1).
            text += String(number)
        }
    }

    public static func write(string: String, to text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
