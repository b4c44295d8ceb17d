import CPooldShim
import PoolIPC

/// The daemon's job segments, reused: a job that ended cleanly gives its segment back, and the next
/// job of the same size class takes it, zeroed, instead of a new one. A new segment costs a
/// free-space check, shm_open, ftruncate, fallocate, mmap and close, then unlink and munmap at
/// the end, and tmpfs creates and evicts an inode each time; a reused one costs a memset. (As
/// PHP-FPM keeps its scoreboard mapped, and an allocator keeps freed blocks on a free list by size.)
///
/// Only what no process can still write into comes back (the scheduler decides: every participant
/// reported its part). Anything else is discarded: marked retired and unlinked, as every segment
/// used to be at its job's end; its id is never handed out again. Bounded: at most `capacity`
/// free segments of at most `largestPooledBytes` each, the most recently freed reused first (its
/// pages are warm, and the workers have it mapped); no descriptor is held for them. Free
/// segments keep their names, so the stale-instance cleaner and the shutdown find them by the
/// instance's prefix like any other object. Lives on the event loop.
final class JobSegmentPool {
    /// The most free segments kept.
    static let capacity = 8
    /// The largest segment kept for reuse (page-rounded); larger ones are made and removed per job.
    static let largestPooledBytes = 1 << 20

    private let names: IPCNames
    /// Free segments and their ids, the most recently freed last.
    private var free: [(mapping: SharedSegment, id: Int)] = []

    init(names: IPCNames) {
        self.names = names
    }

    /// The free segments now.
    var freeCount: Int { free.count }

    /// Whether a job of `shape` would get a free segment: then it needs no room in /dev/shm.
    func hasFree(for shape: JobSegment.Shape) -> Bool {
        free.contains { $0.mapping.size == shape.pageBytes }
    }

    /// A free segment of the job's size class, zeroed and laid out for it; nil when there is none.
    func reuse(for shape: JobSegment.Shape) -> JobSegment? {
        guard let index = free.lastIndex(where: { $0.mapping.size == shape.pageBytes }) else { return nil }
        let (mapping, id) = free.remove(at: index)
        return JobSegment.prepare(mapping, id: id, for: shape, zeroing: true)
    }

    /// A new segment for job `jobID`, named after it (and known by its id from now on).
    func create(for shape: JobSegment.Shape, jobID: Int) throws(IPCError) -> JobSegment {
        let mapping = try SharedSegment.create(name: names.job(jobID), size: shape.pageBytes)
        return JobSegment.prepare(mapping, id: jobID, for: shape, zeroing: false)
    }

    /// A job is done with its segment. `reusable`: no process can write into it any more, so it
    /// is kept (if it is small enough and there is room; else the oldest free one goes). Otherwise
    /// it is discarded.
    func giveBack(_ segment: JobSegment, reusable: Bool) {
        guard reusable, segment.segment.size <= Self.largestPooledBytes else {
            discard(segment.segment)
            return
        }
        JobSegment.mark(segment.segment, POOL_JOB_FREE_MAGIC)
        free.append((segment.segment, segment.id))
        if free.count > Self.capacity { discard(free.removeFirst().mapping) }
    }

    /// Marks the segment retired, so that workers that still map it unmap it (its pages are freed
    /// only then), and unlinks it. The mapping goes with the last reference.
    func discard(_ mapping: SharedSegment) {
        JobSegment.mark(mapping, POOL_JOB_RETIRED_MAGIC)
        SharedSegment.unlink(name: mapping.name)
    }

    /// Discards every free segment: the daemon stops.
    func removeAll() {
        for (mapping, _) in free { discard(mapping) }
        free.removeAll()
    }
}
