/// An integer's decimal text appended to bytes, as `String(value)` writes it, without making the
/// string: the encoders, the log handlers and the records' timestamps write numbers on every
/// reply, log line and job.
extension Array where Element == UInt8 {
    /// `magnitude`, minus-signed when `negative`, zero-padded to at least `width` digits.
    @inlinable
    public mutating func appendDecimal(magnitude: UInt64, negative: Bool = false, width: Int = 1) {
        if negative { append(UInt8(ascii: "-")) }
        // Least significant first, then turned around.
        let start = count
        var rest = magnitude
        repeat {
            append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        } while rest != 0
        while count - start < width { append(UInt8(ascii: "0")) }
        self[start...].reverse()
    }

    @inlinable
    public mutating func appendDecimal(_ value: Int64, width: Int = 1) {
        appendDecimal(magnitude: value.magnitude, negative: value < 0, width: width)
    }
}
