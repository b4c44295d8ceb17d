/// Durations as people write them on a command line and in job parameters: `500ms`, `2s`, `1.5s`,
/// `250us`, `0`, and ranges `0..1s` (the unit of the upper bound applies to a bare lower one).
public enum DurationText {
    /// Nanoseconds, or nil if the text is not a duration.
    public static func nanoseconds(_ text: String) -> Int64? {
        let trimmed = text.trimmingSpaces
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count)), value >= 0, value * scale < 9e18 else { return nil }
            return Int64(value * scale)
        }
        if trimmed == "0" { return 0 }
        return nil
    }

    /// A range `low..high` (or a single duration, meaning exactly that) in nanoseconds.
    public static func range(_ text: String) -> ClosedRange<Int64>? {
        guard let (low, high) = bounds(text), low <= high else { return nil }
        return low...high
    }

    /// The two ends of `low..high` as written, in either order; nil when either is not a duration.
    public static func bounds(_ text: String) -> (low: Int64, high: Int64)? {
        guard text.contains("..") else { return nanoseconds(text).map { ($0, $0) } }
        let sides = text.components(separatedByDots: true)
        guard sides.count == 2, let high = nanoseconds(sides[1]) else { return nil }
        let unit = String(sides[1].drop(while: { $0.isNumber || $0 == "." }))
        guard let low = nanoseconds(sides[0]) ?? nanoseconds(sides[0] + unit) else { return nil }
        return (low, high)
    }

    /// Formats nanoseconds compactly (`1.5s`, `600ms`, `250us`).
    public static func format(_ nanos: Int64) -> String {
        switch nanos {
        case 0: return "0"
        case 1_000_000_000...: return trim(Double(nanos) / 1e9) + "s"
        case 1_000_000...: return trim(Double(nanos) / 1e6) + "ms"
        case 1_000...: return trim(Double(nanos) / 1e3) + "us"
        default: return "\(nanos)ns"
        }
    }

    private static func trim(_ value: Double) -> String {
        value.rounded() == value ? String(Int64(value)) : String((value * 1000).rounded() / 1000)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }

    /// Splits at the first `..`.
    fileprivate func components(separatedByDots: Bool) -> [String] {
        guard let index = indices.first(where: { self[$0...].hasPrefix("..") }) else { return [self] }
        return [String(self[..<index]), String(self[self.index(index, offsetBy: 2)...])]
    }
}
