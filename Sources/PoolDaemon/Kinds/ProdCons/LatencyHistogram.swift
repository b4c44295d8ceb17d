import CPooldShim
import PoolIPC

/// A log-linear histogram of nanosecond values that lives in shared memory: 16 buckets per power
/// of two (so a percentile is a bucket's lower bound, within `resolution` of the true value), 1024
/// counters and the exact maximum, recorded without allocation by one process and read by another.
/// (hdrhistogram-swift keeps its counts in process memory, which the daemon cannot see; this is
/// the same idea at a fixed precision, placed in the job's segment.)
struct LatencyHistogram {
    static let bucketCount = Int(POOL_LATENCY_BUCKETS)
    /// The counters, then the largest value recorded: a `pool_latency_histogram`.
    static let byteSize = MemoryLayout<pool_latency_histogram>.stride
    /// A bucket's width relative to its lower bound: 1/16.
    static let resolution = 1.0 / 16

    let counts: UnsafeMutablePointer<Int64>
    /// Kept apart from the buckets: the highest bucket's bound is up to `resolution` below it.
    private let maximum: UnsafeMutablePointer<Int64>

    init(at raw: UnsafeMutableRawPointer) {
        let histogram = raw.layout(pool_latency_histogram.self)
        counts = UnsafeMutableRawPointer(histogram.field(\.counts)).layout(Int64.self)
        maximum = histogram.field(\.maximum)
    }

    @inline(__always)
    static func bucket(_ value: Int64) -> Int {
        guard value >= 16 else { return Int(max(value, 0)) }
        let exponent = 63 - value.leadingZeroBitCount
        return (exponent - 3) * 16 + Int((value >> (exponent - 4)) & 15)
    }

    /// The smallest value that falls into bucket `index`.
    static func lowerBound(_ index: Int) -> Int64 {
        guard index >= 16 else { return Int64(index) }
        let exponent = index / 16 + 3
        return Int64(16 + index % 16) << (exponent - 4)
    }

    @inline(__always)
    func record(_ value: Int64) {
        counts[Self.bucket(value)] += 1
        if value > maximum.pointee { maximum.pointee = value }
    }

    /// Percentiles (0-100), each a bucket's lower bound, and the exact maximum over several
    /// histograms, in nanoseconds.
    static func summary(_ histograms: [LatencyHistogram], percentiles: [Double]) -> (values: [Int64], max: Int64, count: Int64) {
        var merged = [Int64](repeating: 0, count: bucketCount)
        for histogram in histograms {
            for index in 0..<bucketCount { merged[index] += histogram.counts[index] }
        }
        let total = merged.reduce(0, +)
        guard total > 0 else { return (percentiles.map { _ in 0 }, 0, 0) }
        let highestValue = histograms.map { $0.maximum.pointee }.max() ?? 0
        let highest = merged.lastIndex { $0 > 0 }!
        let values = percentiles.map { percentile -> Int64 in
            let rank = Int64((percentile / 100 * Double(total)).rounded(.up))
            var seen: Int64 = 0
            for index in 0..<bucketCount {
                seen += merged[index]
                if seen >= max(rank, 1) { return lowerBound(index) }
            }
            return lowerBound(highest)
        }
        return (values, highestValue, total)
    }
}

/// SplitMix64: a small, fast, seedable generator for the items and delays, so that a seed
/// reproduces a run's values.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
