import NIOCore
import PoolIPC
import PoolProtocol

/// One place in the pool and the worker process occupying it.
struct Slot {
    let index: Int
    var state: WorkerState = .starting
    var process: SpawnedProcess?
    var commands: MessageQueue?
    /// The job this slot's worker is working on.
    var job: Int?
    var restarts = 0
    var lastExit: String?
    /// When the recent crashes happened (monotonic nanoseconds), for the failure window.
    var crashTimes: [Int64] = []
    /// Set when the pool shrinks below this slot: it exits after its current job and is removed.
    var retiring = false
    /// The pending start timeout, respawn backoff or stop timeout.
    var timer: Scheduled<Void>?

    init(index: Int) {
        self.index = index
    }

    var info: WorkerInfo {
        WorkerInfo(slot: index, pid: Int(process?.pid ?? 0), state: state, job: job, restarts: restarts, lastExit: lastExit)
    }
}
