import PoolIPC
import PoolProtocol

/// The kernel's resources a job or a pool size needs, checked before they are promised: a Run or a
/// Resize the machine has no room for is refused with a `ResourceLimit` that names the limit and
/// how to raise it, instead of being accepted and failing (or faulting) later.
extension PoolController {
    /// The message queues this daemon holds open now (its event queue, its slots' command queues,
    /// its running jobs' queues) and the bytes the kernel charges it for them.
    var heldMessageQueues: (count: Int, bytes: Int) {
        var count = 1
        var bytes = SystemLimits.messageQueueCost(depth: events.depth, messageSize: events.messageSize)
        for slot in slots.values {
            guard let commands = slot.commands else { continue }
            count += 1
            bytes += SystemLimits.messageQueueCost(depth: commands.depth, messageSize: commands.messageSize)
        }
        for id in runningJobIDs {
            guard let job = jobs[id], job.segment != nil, let queue = job.plan.messageQueue else { continue }
            count += 1
            bytes += SystemLimits.messageQueueCost(depth: queue.depth, messageSize: queue.messageSize)
        }
        return (count, bytes)
    }

    /// Refuses a job that /dev/shm or the queue limits have no room for now.
    func checkResources(for plan: any JobPlan) throws(PoolError) {
        let segmentBytes = SharedMemorySpace.pages(plan.segmentSize)
        if let space = SharedMemorySpace.available(), segmentBytes > space.free {
            throw PoolError.resourceLimit(
                "the job needs \(segmentBytes) bytes of shared memory in \(SharedMemorySpace.directory) but only \(space.free) of its \(space.total) are free; "
                + "wait for running jobs to finish, ask for a smaller job (fewer items, no trace), or enlarge \(SharedMemorySpace.directory) (mount -o remount,size=...)")
        }
        if let queue = plan.messageQueue {
            try checkQueueRoom(queues: 1, bytes: SystemLimits.messageQueueCost(depth: queue.depth, messageSize: queue.messageSize),
                               for: "the job's queue (\(queue.depth) x \(queue.messageSize)-byte messages)",
                               otherwise: "wait for running prodcons jobs to finish or shrink the pool")
        }
    }

    /// Whether `queues` more queues of `bytes` in all fit beside what exists now.
    private func checkQueueRoom(queues: Int, bytes: Int, for what: String, otherwise: String) throws(PoolError) {
        let held = heldMessageQueues
        if !SystemLimits.bypassesQueueLimits {
            let maxQueues = SystemLimits.messageQueueMaxQueues
            // Every user's queues count, and so do unlinked ones still open (only ours are known).
            let existing = max(held.count, IPCObjectListing.queueCount() ?? 0)
            if existing + queues > maxQueues {
                throw PoolError.resourceLimit(
                    "\(what) needs \(queues) more message queue\(queues == 1 ? "" : "s"), but \(existing) exist in this IPC namespace (\(held.count) of them this daemon's) "
                    + "and /proc/sys/fs/mqueue/queues_max is \(maxQueues); \(otherwise), or raise it (sysctl fs.mqueue.queues_max=\(existing + queues))")
            }
        }
        let limit = SystemLimits.messageQueueByteLimit
        if held.bytes + bytes > limit {
            throw PoolError.resourceLimit(
                "\(what) needs \(bytes) bytes of message queue memory and this daemon's queues hold \(held.bytes) already, above RLIMIT_MSGQUEUE = \(limit) bytes for this user; "
                + "\(otherwise), send smaller messages, or raise the limit (LimitMSGQUEUE= under systemd, ulimit -q)")
        }
    }
}
