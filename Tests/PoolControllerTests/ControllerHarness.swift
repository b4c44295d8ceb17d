import Foundation
import Logging
import NIOCore
import NIOEmbedded
import PoolIPC
import PoolProtocol
import Testing
@testable import PoolDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The controller in-process: on an `EmbeddedEventLoop` (virtual time, moved by `advance`), with
/// fake workers that the test makes say ready, end their part of a job, hang or die. What stays
/// real: the job segments (POSIX shared memory) and the event queue, under a prefix of this test
/// alone, which `finish()` checks is empty at the end.
final class ControllerHarness {
    let loop = EmbeddedEventLoop()
    let launcher = FakeLauncher()
    let heartbeats = FakeHeartbeats()
    let names: IPCNames
    let controller: PoolController
    private(set) var stopped = false

    private static let counter = Counter()

    init(workers: Int, maxWorkers: Int? = nil, configure: (inout DaemonConfiguration) -> Void = { _ in }) throws {
        names = IPCNames(prefix: "/poold-ctltest-\(getpid())-\(Self.counter.next())")
        var configuration = DaemonConfiguration(socketPath: "/nonexistent", workers: workers, maxWorkers: maxWorkers ?? max(workers, 4),
                                                names: names, logLevel: .critical, logTarget: .stderr, workerEnvironment: [])
        // Long, so that only the heartbeat test's workers are found hung in hours of virtual time.
        configuration.heartbeatTimeout = .seconds(24 * 3600)
        configure(&configuration)
        let events = try MessageQueue.create(name: names.events, depth: 2, messageSize: MemoryLayout<WorkerEvent>.size, nonBlocking: true)
        // Jobs read their start time from the wall clock; everything else from the loop.
        loop.advanceTime(by: .seconds(1))
        controller = PoolController(configuration: configuration, eventLoop: loop,
                                    logger: Logger(label: "poold-test") { _ in SwiftLogNoOpLogHandler() },
                                    scoreboard: heartbeats, events: events, notifier: ServiceNotifier(environment: [:]),
                                    launcher: launcher)
        controller.onStopped = { [unowned self] in stopped = true }
        controller.startPool()
        loop.run()
    }

    // MARK: Time

    func advance(by duration: Duration) {
        loop.advanceTime(by: .nanoseconds(nanoseconds(duration)))
    }

    var now: Int64 { loop.monotonicNanoseconds }

    // MARK: Workers

    /// The current worker of the slot (the last one launched there).
    func worker(_ slot: Int) -> FakeWorker {
        guard let worker = launcher.launched[slot]?.last else {
            Issue.record("no worker was launched in slot \(slot)")
            return FakeWorker(pid: -1, slot: slot)
        }
        return worker
    }

    func launches(_ slot: Int) -> Int { launcher.launched[slot]?.count ?? 0 }

    func state(_ slot: Int) -> WorkerState? { controller.slotTable[slot]?.state }

    /// The slot's worker says it is ready (and beats once).
    func ready(_ slots: Int...) {
        for slot in slots {
            heartbeats.beat(slot: slot, at: now)
            controller.receive([.worker(WorkerEvent(kind: .ready, slot: slot, pid: worker(slot).pid))])
        }
        loop.run()
    }

    /// The slot's worker reports that its part of `job` ended.
    func partEnded(_ slot: Int, job: Job, outcome: WorkerEvent.Outcome = .completed, reason: String = "") {
        controller.receive([.worker(WorkerEvent(kind: .jobEnded, slot: slot, pid: worker(slot).pid, jobID: job.id,
                                                outcome: outcome, reason: reason))])
        loop.run()
    }

    /// The slot's worker process exits (as the watcher reports a readable pidfd).
    func exits(_ slot: Int, _ status: ProcessExit = .exited(1)) {
        let worker = worker(slot)
        worker.exit = status
        controller.receive([.processExited(pidfd: worker.pidfd)])
        loop.run()
    }

    /// Every worker with a live process beats now.
    func beatAll(except silent: Set<Int> = []) {
        for (slot, workers) in launcher.launched where !silent.contains(slot) {
            if let worker = workers.last, worker.exit == nil { heartbeats.beat(slot: slot, at: now) }
        }
    }

    // MARK: Jobs

    /// Submits a counter job for `workers` (resumable after a worker's death), as Run does.
    @discardableResult
    func submit(workers: Int, timeout: Duration? = nil) throws -> Job {
        let plan = try JobCatalog.plan(kind: "counter", parameters: .object(["workers": .number(Double(workers)), "split": .bool(false),
                                                                             "iterations": .number(1000), "mode": .string("atomic")]),
                                       limits: JobLimits(poolSize: controller.slotTable.targetSize))
        let job = Job(id: try controller.history.takeJobID(), plan: plan)
        job.timeout = timeout
        controller.enqueue(job)
        loop.run()
        return job
    }

    /// The jobs the workers were told to run, in order, by slot.
    func runCommands(_ slot: Int) -> [WorkerCommand] {
        (launcher.launched[slot] ?? []).flatMap { $0.commands.sent }.filter { $0.kind == .runJob }
    }

    // MARK: The end

    /// Stops the daemon the orderly way (every worker with a process exits when asked) and checks
    /// that it stopped and left no IPC object of this test behind.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        if !stopped {
            // Running jobs end as if their workers completed them.
            for index in controller.slotTable.indices {
                guard let slot = controller.slotTable[index], slot.state == .busy, let id = slot.job,
                      let job = controller.scheduler.jobs[id] else { continue }
                partEnded(index, job: job)
            }
            controller.requestStop(reason: "the test is over")
            loop.run()
            for _ in 0..<100 where !stopped {
                for (slot, workers) in launcher.launched {
                    if let worker = workers.last, worker.exit == nil { exits(slot, .exited(0)) }
                }
                advance(by: .seconds(60))
            }
        }
        #expect(stopped, "the controller did not stop", sourceLocation: sourceLocation)
        let left = Self.objects(withPrefix: names.prefix)
        #expect(left.isEmpty, "IPC objects left behind: \(left)", sourceLocation: sourceLocation)
        // Whatever a failed test left: gone all the same.
        for name in left {
            SharedSegment.unlink(name: "/" + name)
            MessageQueue.unlink(name: "/" + name)
        }
    }

    static func objects(withPrefix prefix: String) -> [String] {
        let name = String(prefix.dropFirst())
        return ["/dev/shm", "/dev/mqueue"].flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(name) }
        }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}

/// Workers that are objects in this process: launching one records it; its signals are recorded;
/// it "exits" when the test says so.
final class FakeLauncher: WorkerLauncher {
    private(set) var launched: [Int: [FakeWorker]] = [:]
    private var nextPid: Int32 = 1000
    /// The queue made for each slot's next worker.
    private var queues: [Int: FakeCommandQueue] = [:]
    /// Launches in this slot fail (like a posix_spawn that fails).
    var failingSlots: Set<Int> = []

    func makeCommandQueue(slot: Int) throws(IPCError) -> any WorkerCommandQueue {
        let queue = FakeCommandQueue()
        queues[slot] = queue
        return queue
    }

    func removeCommandQueue(slot: Int) {}

    func launch(slot: Int) throws(IPCError) -> any WorkerProcess {
        if failingSlots.contains(slot) { throw IPCError("posix_spawn(fake)", errno: EAGAIN) }
        nextPid += 1
        let worker = FakeWorker(pid: nextPid, slot: slot, commands: queues[slot] ?? FakeCommandQueue())
        launched[slot, default: []].append(worker)
        return worker
    }
}

/// A worker as the controller sees one: a pid, a pidfd (a number no real descriptor has), signals.
final class FakeWorker: WorkerProcess, @unchecked Sendable {
    let pid: Int32
    let slot: Int
    var pidfd: Int32 { -pid }
    private(set) var signals: [Int32] = []
    var exit: ProcessExit?
    let commands: FakeCommandQueue

    init(pid: Int32, slot: Int, commands: FakeCommandQueue = FakeCommandQueue()) {
        self.pid = pid
        self.slot = slot
        self.commands = commands
    }

    var killed: Bool { signals.contains(SIGKILL) }

    func signal(_ signal: Int32) -> Bool {
        signals.append(signal)
        return true
    }

    func reap() -> ProcessExit? { exit }
}

/// A command queue that keeps what is sent on it.
final class FakeCommandQueue: WorkerCommandQueue {
    private(set) var sent: [WorkerCommand] = []
    var depth: Int { 2 }
    var messageSize: Int { MemoryLayout<WorkerCommand>.size }
    func send(command: WorkerCommand) throws(IPCError) { sent.append(command) }
    func close() {}
}

/// Heartbeats as the test sets them.
final class FakeHeartbeats: HeartbeatBoard {
    private var beats: [Int: Int64] = [:]
    func reset(slot: Int) { beats[slot] = 0 }
    func heartbeat(slot: Int) -> Int64 { beats[slot] ?? 0 }
    func beat(slot: Int, at time: Int64) { beats[slot] = time }
}
