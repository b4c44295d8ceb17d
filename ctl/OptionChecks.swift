import ArgumentParser
import PoolProtocol

/// The checks poolctl makes itself, before asking the daemon: what a value must be whatever the
/// pool (a count of at least 1, a duration that parses) is a usage error (exit 2); what depends on
/// the pool or the machine (more workers than it has, a queue deeper than msg_max) the daemon
/// refuses (exit 4).
enum OptionChecks {
    static func atLeast(_ minimum: Int, _ value: Int?, _ option: String) throws {
        if let value, value < minimum { throw ValidationError("\(option) must be at least \(minimum), not \(value)") }
    }

    static func duration(_ text: String?, _ option: String) throws {
        if let text, DurationText.nanoseconds(text) == nil {
            throw ValidationError("\(option) must be a duration such as 500ms, 2s or 1m, not '\(text)'")
        }
    }

    static func durationOrRange(_ text: String?, _ option: String) throws {
        guard let text else { return }
        guard let (low, high) = DurationText.bounds(text) else {
            throw ValidationError("\(option) must be a duration or a range such as 0..1s or 10ms..50ms, not '\(text)'")
        }
        if low > high {
            throw ValidationError("\(option) '\(text)' is reversed: write the lower bound first (\(DurationText.format(high))..\(DurationText.format(low)))")
        }
    }
}
