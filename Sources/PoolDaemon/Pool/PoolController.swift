import Foundation
import Logging
import NIOCore
import PoolHistory
import PoolIPC
import PoolProtocol

/// The daemon's state on its one event loop (the same one that serves the control socket), so
/// that every transition is a plain method call with no lock; the watcher thread and the sockets
/// only hand it events. The state is held by its owners: the `Lifecycle`, the `SlotTable`, the
/// `JobScheduler`, the `HistoryIndex` and the `StatusPublisher`. The controller routes each event
/// to its owner and orders the effects that span them (a worker's exit ends its part of a job,
/// then respawns or fails its slot); its extensions are those sequences, by topic, and the
/// varlink method table.
final class PoolController {
    /// Mostly fixed at start; a reload changes the keys it applies (see `reloadConfiguration`).
    var configuration: DaemonConfiguration
    let eventLoop: any EventLoop
    let logger: Logger
    let events: MessageQueue
    let notifier: ServiceNotifier
    var watcher: EventWatcher?
    let startedAt: Int64

    /// The slots and their workers.
    let slotTable: SlotTable
    /// The largest pool the kernel's queue limits allowed at start (at most --max-workers).
    let queueLimitedPoolSize: Int

    /// A RestartWorkers in progress (PoolController+Restart).
    var restart = RestartState()

    /// The jobs, their queue and dispatch.
    let scheduler: JobScheduler

    /// The jobs of earlier runs, the listing order, the job ids and the store on disk.
    let history: HistoryIndex
    /// The status clients follow and STATUS=.
    let publisher: StatusPublisher

    var lifecycle = Lifecycle()
    var drainDeadlineTimer: Scheduled<Void>?
    /// Refreshes STATUS= (its countdown) while jobs drain.
    var drainStatusTimer: Scheduled<Void>?
    /// Runs once when the initial workers have all left `starting`: the daemon is ready.
    var onReady: (() -> Void)?
    /// Runs once when every worker has exited and every IPC object is gone.
    var onStopped: (() -> Void)?

    /// `launcher` starts the workers and `scoreboard` has their heartbeats: processes and the
    /// shared scoreboard in the daemon, fakes in the in-process tests. The event loop's clock is the controller's (see `EventLoop.monotonicNanoseconds`).
    init(configuration: DaemonConfiguration, eventLoop: any EventLoop, logger: Logger, scoreboard: any HeartbeatBoard,
         events: MessageQueue, notifier: ServiceNotifier, launcher: any WorkerLauncher) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.events = events
        self.notifier = notifier
        self.startedAt = eventLoop.monotonicNanoseconds
        self.slotTable = SlotTable(targetSize: configuration.workers, launcher: launcher, scoreboard: scoreboard,
                                   eventLoop: eventLoop, logger: logger)
        self.queueLimitedPoolSize = min(configuration.maxWorkers, Self.poolSizeAllowedByQueueLimits(events: events))
        self.history = HistoryIndex(eventLoop: eventLoop)
        self.publisher = StatusPublisher(eventLoop: eventLoop, notifier: notifier, progressInterval: configuration.progressInterval)
        self.scheduler = JobScheduler(
            policy: JobScheduler.Policy(overtakeLimit: configuration.overtakeLimit, cancelGrace: configuration.cancelGrace,
                                        progressInterval: configuration.progressInterval, historyLimit: configuration.historyLimit,
                                        names: configuration.names, jobLogRate: configuration.jobLogRate),
            slotTable: slotTable, history: history, publisher: publisher, eventLoop: eventLoop, logger: logger)
        publisher.source = self
    }

    /// Spawns the initial workers. Runs on the loop.
    func startPool() {
        if queueLimitedPoolSize < configuration.maxWorkers {
            logger.notice("the pool can grow to \(queueLimitedPoolSize) worker\(queueLimitedPoolSize == 1 ? "" : "s"), not --max-workers \(configuration.maxWorkers): each worker needs a command queue besides the event queue, within /proc/sys/fs/mqueue/queues_max = \(SystemLimits.messageQueueMaxQueues) and RLIMIT_MSGQUEUE = \(SystemLimits.messageQueueByteLimit) bytes; raise them for more")
        }
        for index in 0..<slotTable.targetSize {
            slotTable.add(index)
            spawnWorker(slot: index)
        }
        slotTable.checkHeartbeats { [unowned self] in configuration.heartbeatTimeout }
        checkReady()
    }

    /// Everything the watcher thread reports arrives here, in order.
    func receive(_ batch: [WatchedEvent]) {
        for event in batch {
            switch event {
            case .worker(let message): receive(message)
            case .processExited(let pidfd): workerExited(pidfd: pidfd)
            case .signal(let number): receive(signal: number)
            }
        }
    }

    private func receive(_ message: WorkerEvent) {
        switch message.kind {
        case .ready?: workerSaidReady(slot: Int(message.slot), pid: message.pid)
        case .jobEnded?: participantEnded(slot: Int(message.slot), pid: message.pid, jobID: Int(message.jobID),
                                          outcome: message.outcome, errorCode: message.errorCode, reason: message.reason)
        case nil: logger.warning("unknown event \(message.kindRaw) from slot \(message.slot); ignored")
        }
    }

    private func receive(signal number: Int32) {
        switch number {
        case SIGTERM, SIGINT:
            requestStop(reason: number == SIGTERM ? "SIGTERM" : "SIGINT")
        case SIGHUP:
            reload()
        case SIGCHLD:
            slotTable.reapReleased()
        default:
            logger.info("signal \(number) ignored")
        }
    }

    // MARK: Status

    /// Every change made during one loop turn is published once.
    func noteChange() {
        publisher.noteChange()
    }

    /// getpid is a system call (glibc no longer caches it), and the daemon never forks.
    private static let processID = Int(getpid())

    func statusReply() -> StatusReply {
        StatusReply(
            pid: Self.processID, version: PooldVersion.string, poolSize: slotTable.targetSize, workers: slotTable.info,
            jobsQueued: scheduler.queue.count, jobsRunning: scheduler.running.count, jobsFinished: scheduler.finishedCount,
            uptimeSeconds: Double(eventLoop.monotonicNanoseconds - startedAt) / 1e9,
            drain: lifecycle.drainInfo(now: eventLoop.monotonicNanoseconds),
            history: history.store?.status, instance: configuration.instance,
            runningJobs: scheduler.running.isEmpty ? nil : scheduler.running.sorted().compactMap { scheduler.jobs[$0]?.record(includingLog: false) })
    }

    /// The one-line summary for systemd's STATUS=.
    func statusLine(_ status: StatusReply) -> String {
        StatusPublisher.statusLine(status, stopping: stoppingStatusLine(status))
    }
}

extension PoolController: StatusSource {
    var hasRunningJobs: Bool { !scheduler.running.isEmpty }
}
