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
        let commands = slotTable.heldCommandQueues
        count += commands.count
        bytes += commands.bytes
        for id in scheduler.running {
            guard let job = scheduler.jobs[id], job.segment != nil, let queue = job.plan.messageQueue else { continue }
            count += 1
            bytes += SystemLimits.messageQueueCost(depth: queue.depth, messageSize: queue.messageSize)
        }
        return (count, bytes)
    }

    /// What one worker's command queue costs (see `ProcessLauncher`).
    static var commandQueueCost: Int {
        SystemLimits.messageQueueCost(depth: ProcessLauncher.commandQueueDepth, messageSize: MemoryLayout<WorkerCommand>.size)
    }

    /// The largest pool the kernel's queue limits allow this daemon, read at start: a command queue
    /// per worker besides the event queue, within queues_max and RLIMIT_MSGQUEUE.
    static func poolSizeAllowedByQueueLimits(events: MessageQueue) -> Int {
        let eventCost = SystemLimits.messageQueueCost(depth: events.depth, messageSize: events.messageSize)
        let byBytes = max(0, SystemLimits.messageQueueByteLimit - eventCost) / commandQueueCost
        let byCount = SystemLimits.bypassesQueueLimits ? Int.max : SystemLimits.messageQueueMaxQueues - 1
        return max(1, min(byBytes, byCount))
    }

    /// Refuses a job that /dev/shm or the queue limits have no room for now. A job that a free
    /// segment fits needs no room (its pages are allocated): it is not asked about.
    func checkResources(for plan: any JobPlan) throws(PoolError) {
        let shape = plan.segmentShape
        let segmentBytes = shape.pageBytes
        if !scheduler.segments.hasFree(for: shape), let space = SharedMemorySpace.available(), segmentBytes > space.free {
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

    /// Refuses a pool size the queue limits do not allow: beyond the maximum they allowed at start,
    /// or needing more command queues than there is room for now.
    func checkResources(forPoolSize size: Int) throws(PoolError) {
        if size > queueLimitedPoolSize {
            throw PoolError.resourceLimit(
                "a pool of \(size) workers needs \(size + 1) message queues (a command queue per worker and the event queue), but this daemon can have at most \(queueLimitedPoolSize) workers within "
                + "/proc/sys/fs/mqueue/queues_max = \(SystemLimits.messageQueueMaxQueues) and RLIMIT_MSGQUEUE = \(SystemLimits.messageQueueByteLimit) bytes as they were at its start; "
                + "ask for at most \(queueLimitedPoolSize), or raise them (sysctl fs.mqueue.queues_max=\(size + 2); LimitMSGQUEUE= under systemd, ulimit -q) and restart the daemon")
        }
        let missing = (0..<size).filter { slotTable[$0]?.commands == nil }.count
        guard missing > 0 else { return }
        try checkQueueRoom(queues: missing, bytes: missing * Self.commandQueueCost, for: "a pool of \(size) workers",
                           otherwise: "ask for fewer workers")
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
