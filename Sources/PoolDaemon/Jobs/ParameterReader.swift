import PoolProtocol

/// Reads a job's parameters object field by field, with a varlink `InvalidParameter` naming the
/// field and the accepted range for anything missing, mistyped, out of range or unknown.
struct ParameterReader {
    private let fields: [String: JSONValue]
    private var used: Set<String> = []

    init(_ parameters: JSONValue?) throws(PoolError) {
        switch parameters {
        case nil, .null?: fields = [:]
        case .object(let members)?: fields = members
        default: throw PoolError.invalidParameter("parameters", "must be an object of named parameters")
        }
    }

    mutating func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(PoolError) -> Int {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        guard case .number(let number) = raw, number.rounded() == number, abs(number) < 9.0e18 else {
            throw PoolError.invalidParameter(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        let integer = Int(number)
        guard range.contains(integer) else {
            throw PoolError.invalidParameter(name, "must be from \(range.lowerBound) to \(range.upperBound), not \(integer)")
        }
        return integer
    }

    mutating func bool(_ name: String, default value: Bool) throws(PoolError) -> Bool {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        guard case .bool(let flag) = raw else { throw PoolError.invalidParameter(name, "must be true or false") }
        return flag
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ name: String, default value: T) throws(PoolError) -> T
    where T.RawValue == String {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        let names = T.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .string(let text) = raw, let choice = T(rawValue: text) else {
            throw PoolError.invalidParameter(name, "must be one of \(names)")
        }
        return choice
    }

    /// Refuses fields nobody asked for: a misspelt option must not silently fall back to a default.
    func finish(kind: String) throws(PoolError) {
        if let unknown = fields.keys.filter({ !used.contains($0) }).sorted().first {
            throw PoolError.invalidParameter(unknown, "is not a parameter of \(kind) jobs (they take \(used.sorted().joined(separator: ", ")))")
        }
    }

    /// A duration written as text (`500ms`, `2s`) or as a number of milliseconds; nanoseconds.
    mutating func duration(_ name: String, default value: Int64, in range: ClosedRange<Int64>) throws(PoolError) -> Int64 {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        let nanos: Int64?
        switch raw {
        case .string(let text): nanos = DurationText.nanoseconds(text)
        case .number(let millis) where millis >= 0 && millis < 9e12: nanos = Int64(millis * 1e6)
        default: nanos = nil
        }
        guard let nanos else { throw PoolError.invalidParameter(name, "must be a duration such as 500ms or 2s") }
        guard range.contains(nanos) else {
            throw PoolError.invalidParameter(name, "must be from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound))")
        }
        return nanos
    }

    /// A duration range written as `low..high` (or one duration); nanoseconds.
    mutating func durationRange(_ name: String, default value: ClosedRange<Int64>, max: Int64) throws(PoolError) -> ClosedRange<Int64> {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        guard case .string(let text) = raw, let (low, high) = DurationText.bounds(text) else {
            throw PoolError.invalidParameter(name, "must be a duration or a range such as 0..1s or 10ms..50ms")
        }
        guard low <= high else {
            let right = DurationText.format(high) + ".." + DurationText.format(low)
            throw PoolError.invalidParameter(name, "'\(text)' is reversed: it goes from \(DurationText.format(low)) down to \(DurationText.format(high)); write the lower bound first: \(right)")
        }
        let range = low...high
        guard range.upperBound <= max else {
            throw PoolError.invalidParameter(name, "may be at most \(DurationText.format(max))")
        }
        return range
    }

    /// A list of values, also accepted as one comma-separated string (`10,20`).
    mutating func list(_ name: String) throws(PoolError) -> [JSONValue]? {
        used.insert(name)
        switch fields[name] {
        case nil, .null?: return nil
        case .array(let items)?: return items
        case .string(let text)?:
            return text.split(separator: ",").map { part in
                let item = String(part)
                return Double(item).map(JSONValue.number) ?? .string(item)
            }
        default: throw PoolError.invalidParameter(name, "must be a list (or a comma-separated string)")
        }
    }

    mutating func string(_ name: String, default value: String) throws(PoolError) -> String {
        used.insert(name)
        guard let raw = fields[name], raw != .null else { return value }
        guard case .string(let text) = raw else { throw PoolError.invalidParameter(name, "must be a string") }
        return text
    }
}
