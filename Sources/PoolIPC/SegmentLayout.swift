/// Hands out aligned offsets inside a shared segment, so that a layout is written once as a sequence
/// of fields and every process computes the same offsets from the same parameters.
public struct SegmentLayout: Sendable {
    public private(set) var size: Int = 0

    public init() {}

    /// Reserves `count` values of `T`, aligned to `alignment` (default: a cache line, so that fields
    /// written by different processes do not share one).
    public mutating func reserve<T>(_ type: T.Type, count: Int = 1, alignment: Int = 64) -> Int {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        let align = max(alignment, MemoryLayout<T>.alignment)
        let offset = (size + align - 1) / align * align
        size = offset + MemoryLayout<T>.stride * count
        return offset
    }

    /// Reserves raw bytes.
    public mutating func reserveBytes(_ count: Int, alignment: Int = 64) -> Int {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        let offset = (size + alignment - 1) / alignment * alignment
        size = offset + count
        return offset
    }
}
