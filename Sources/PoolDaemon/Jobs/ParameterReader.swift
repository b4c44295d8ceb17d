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
}
