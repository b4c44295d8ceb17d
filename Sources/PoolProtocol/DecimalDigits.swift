/// An integer's decimal text appended to bytes, as `String(value)` writes it, without making the
/// string: the encoders, the log handlers and the records' timestamps write numbers on every
/// reply, log line and job.
extension Array where Element == UInt8 {
    /// `magnitude`, minus-signed when `negative`, zero-padded to at least `width` digits (at
    /// most 20, which hold any UInt64).
    @inlinable
    public mutating func appendDecimal(magnitude: UInt64, negative: Bool = false, width: Int = 1) {
        // Written from the right into a buffer on the stack, then appended at once: one append,
        // not one per digit and a reversal.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { digits in
            var start = digits.count
            var rest = magnitude
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest != 0
            while digits.count - start < Swift.min(width, 20) {
                start -= 1
                digits[start] = UInt8(ascii: "0")
            }
            if negative {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    @inlinable
    public mutating func appendDecimal(_ value: Int64, width: Int = 1) {
        appendDecimal(magnitude: value.magnitude, negative: value < 0, width: width)
    }
}
