import PoolIPC
import PoolProtocol

/// The kernel's resources a job or a pool size needs, checked before they are promised: a Run or a
/// Resize the machine has no room for is refused with a `ResourceLimit` that names the limit and
/// how to raise it, instead of being accepted and failing (or faulting) later.
extension PoolController {
    /// Refuses a job that /dev/shm has no room for now.
    func checkResources(for plan: any JobPlan) throws(PoolError) {
        let segmentBytes = SharedMemorySpace.pages(plan.segmentSize)
        if let space = SharedMemorySpace.available(), segmentBytes > space.free {
            throw PoolError.resourceLimit(
                "the job needs \(segmentBytes) bytes of shared memory in \(SharedMemorySpace.directory) but only \(space.free) of its \(space.total) are free; "
                + "wait for running jobs to finish, ask for a smaller job (fewer items, no trace), or enlarge \(SharedMemorySpace.directory) (mount -o remount,size=...)")
        }
    }
}
