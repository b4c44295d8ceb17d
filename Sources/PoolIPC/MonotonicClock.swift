import CPooldShim

/// Clocks shared by every process on the machine: CLOCK_MONOTONIC readings taken in different
/// processes are comparable, which is what durations across workers need.
public enum MonotonicClock {
    @inlinable
    public static var nanoseconds: Int64 { pool_monotonic_ns() }

    /// CLOCK_REALTIME, for absolute deadlines that mq_timed* take.
    @inlinable
    public static var realtimeNanoseconds: Int64 { pool_realtime_ns() }
}
