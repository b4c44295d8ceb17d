import NIOCore
import PoolIPC
import PoolProtocol

/// One place in the pool and the worker process occupying it. A value held in the `SlotTable`,
/// which alone changes it, in place.
struct Slot {
    let index: Int
    var state: WorkerState = .starting
    var process: (any WorkerProcess)?
    var commands: (any WorkerCommandQueue)?
    /// The job this slot's worker is working on.
    var job: Int?
    var restarts = 0
    var lastExit: String?
    /// When the recent crashes happened (monotonic nanoseconds), for the failure window.
    var crashTimes: [Int64] = []
    /// Set when the pool shrinks below this slot: it exits after its current job and is removed.
    var retiring = false
    /// Set by RestartWorkers on a busy slot: its worker is replaced when its job ends.
    var replaceAfterJob = false
    /// The pending start timeout, respawn backoff or stop timeout.
    var timer: Scheduled<Void>?
    /// A job participant whose worker died here: the slot's next worker takes it over.
    var takeover: Takeover?
    /// Why the daemon killed this slot's worker (it hung), reported as its exit.
    var killReason: String?

    struct Takeover {
        let job: Int
        let participant: Int
        /// 1 for the first replacement.
        let attempt: Int
    }

    init(index: Int) {
        self.index = index
    }

    var info: WorkerInfo {
        WorkerInfo(slot: index, pid: Int(process?.pid ?? 0), state: state, job: job ?? takeover?.job, restarts: restarts,
                   lastExit: lastExit)
    }
}
