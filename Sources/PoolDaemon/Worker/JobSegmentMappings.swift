import CPooldShim
import PoolIPC

/// The job segments a worker keeps mapped between jobs, by segment id: the daemon reuses segments
/// (`JobSegmentPool`), so the next job usually comes on one mapped already, and attaching it is a
/// look-up and a read of its header instead of shm_open, fstat, mmap and close (and munmap after).
/// An id names one object for good (`JobSegment.id`), so a kept mapping is never of another
/// segment: one the daemon discarded is simply never asked for again. Its pages stay allocated
/// while it is mapped, though, so a segment the daemon marked retired is unmapped at the next
/// attach or idle moment (`dropRetired`). Bounded: the `capacity` most recently used, each no
/// larger than the daemon keeps (a larger one is unlinked at its job's end: it is not kept).
final class JobSegmentMappings {
    static let capacity = 4

    private let names: IPCNames
    /// The most recently used last.
    private var kept: [(id: Int, mapping: SharedSegment)] = []

    init(names: IPCNames) {
        self.names = names
    }

    /// The job's view of segment `id`, mapping it unless it is kept mapped.
    func attach(id: Int) throws(IPCError) -> JobSegment {
        dropRetired()
        let mapping: SharedSegment
        if let index = kept.lastIndex(where: { $0.id == id }) {
            mapping = kept.remove(at: index).mapping
        } else {
            mapping = try SharedSegment.open(name: names.job(id))
        }
        let segment = try JobSegment.attach(mapping, id: id)
        if mapping.size <= JobSegmentPool.largestPooledBytes {
            kept.append((id, mapping))
            if kept.count > Self.capacity { kept.removeFirst() }
        }
        return segment
    }

    /// Unmaps the segments the daemon has discarded.
    func dropRetired() {
        kept.removeAll { JobSegment.state(of: $0.mapping) == POOL_JOB_RETIRED_MAGIC }
    }
}
