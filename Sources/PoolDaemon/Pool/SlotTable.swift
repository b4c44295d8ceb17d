import Foundation
import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Where the workers' heartbeats are read: the scoreboard in the daemon, a fake in the tests.
protocol HeartbeatBoard {
    /// Clears the slot's record before a new worker takes the slot.
    func reset(slot: Int)
    /// When the slot's worker last beat (CLOCK_MONOTONIC nanoseconds), 0 when it has not yet.
    func heartbeat(slot: Int) -> Int64
}

extension Scoreboard: HeartbeatBoard {
    func heartbeat(slot: Int) -> Int64 {
        record(slot: slot).heartbeat.load(ordering: .relaxed)
    }
}

/// The pool's slots and the worker processes in them: starting, stopping and reaping workers,
/// the crash policy (backoff, give-up), heartbeats. It knows nothing of jobs beyond the id a slot
/// works on: what a slot's exit means for a job is the controller's to decide, from the `SlotExit`
/// this table reports. The only owner of `Slot` values; they change in place (`update`). Lives on
/// the event loop.
final class SlotTable {
    private var slots: [Int: Slot] = [:]
    /// The pool size asked for (slots at or above it are retiring).
    var targetSize: Int
    private let launcher: any WorkerLauncher
    private let scoreboard: any HeartbeatBoard
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// Descriptors kept for spawning workers and setting up jobs when clients have taken the rest.
    let descriptorReserve = DescriptorReserve(capacity: 8)
    /// Workers that died while traced, which their tracer has not let go of yet.
    private var unreaped: [any WorkerProcess] = []
    private var random = SystemRandomNumberGenerator()
    /// Set once the daemon has stopped: its IPC objects are gone and must stay so, so no worker
    /// starts again and the heartbeat checks end.
    private(set) var isClosed = false

    init(targetSize: Int, launcher: any WorkerLauncher, scoreboard: any HeartbeatBoard, eventLoop: any EventLoop, logger: Logger) {
        self.targetSize = targetSize
        self.launcher = launcher
        self.scoreboard = scoreboard
        self.eventLoop = eventLoop
        self.logger = logger
    }

    // MARK: Reading

    subscript(index: Int) -> Slot? { slots[index] }

    /// The slots' indices, in order.
    var indices: [Int] { slots.keys.sorted() }

    /// What Status shows, slot by slot.
    var info: [WorkerInfo] { indices.map { slots[$0]!.info } }

    /// Idle workers that can take a job now, in slot order.
    var idle: [Int] { slots.values.filter { $0.state == .ready && !$0.retiring }.map(\.index).sorted() }

    /// Slots that can take work now or soon (not failed, not leaving).
    var usableCount: Int { slots.values.filter { !$0.retiring && $0.state != .failed }.count }

    /// Failed slots that are not leaving, in order.
    var failedServing: [Int] { slots.values.filter { $0.state == .failed && !$0.retiring }.map(\.index).sorted() }

    /// Why a job of `workers` cannot run on the pool as it stands (failed slots do not count), or
    /// nil when it can, now or once busy workers are free.
    func refusal(forWorkers workers: Int) -> PoolError? {
        let usable = usableCount
        guard workers > usable else { return nil }
        let failed = failedServing
        guard !failed.isEmpty else { return .poolTooSmall(requested: workers, poolSize: usable) }
        return .poolTooSmall(requested: workers, poolSize: targetSize, usable: usable, failedSlots: failed)
    }

    var anyStarting: Bool { slots.values.contains { $0.state == .starting } }

    /// Whether some slot has a process, or waits to respawn one.
    var anyProcessOrBackoff: Bool { slots.values.contains { $0.process != nil || $0.state == .backoff } }

    /// The slots whose next worker is to take over a participant of `job`.
    func takeovers(of job: Int) -> [(slot: Int, takeover: Slot.Takeover)] {
        indices.compactMap { index in slots[index]!.takeover.flatMap { $0.job == job ? (index, $0) : nil } }
    }

    /// The command queues held open, and the bytes the kernel charges for them.
    var heldCommandQueues: (count: Int, bytes: Int) {
        var count = 0, bytes = 0
        for case let commands? in slots.values.map(\.commands) {
            count += 1
            bytes += SystemLimits.messageQueueCost(depth: commands.depth, messageSize: commands.messageSize)
        }
        return (count, bytes)
    }

    /// What the pool's slots are doing, for a queued job's `waiting`: "1 idle, 1 busy with job 4".
    var occupancy: String {
        let serving = slots.values.filter { !$0.retiring }
        func count(_ state: WorkerState) -> Int { serving.filter { $0.state == state }.count }
        var parts: [String] = []
        if count(.ready) > 0 { parts.append("\(count(.ready)) idle") }
        let busyJobs = Set(serving.filter { $0.state == .busy }.compactMap(\.job)).sorted()
        if !busyJobs.isEmpty {
            let jobs = busyJobs.count == 1 ? "job \(busyJobs[0])" : "jobs " + busyJobs.map(String.init).joined(separator: ", ")
            parts.append("\(count(.busy)) busy with \(jobs)")
        }
        if count(.starting) > 0 { parts.append("\(count(.starting)) starting") }
        if count(.backoff) > 0 { parts.append("\(count(.backoff)) respawning after a crash") }
        if count(.stopping) > 0 { parts.append("\(count(.stopping)) being replaced") }
        if count(.failed) > 0 { parts.append("\(count(.failed)) failed") }
        return parts.joined(separator: ", ")
    }

    // MARK: Changing

    /// Changes a slot in place; nil when there is no such slot.
    @discardableResult
    func update<R>(_ index: Int, _ change: (inout Slot) -> R) -> R? {
        guard slots[index] != nil else { return nil }
        return change(&slots[index]!)
    }

    func add(_ index: Int) {
        slots[index] = Slot(index: index)
    }

    func remove(_ index: Int) {
        slots[index] = nil
    }

    /// The daemon has stopped: nothing may start again.
    func close() {
        isClosed = true
    }

    /// Starts a worker in the slot: a fresh command queue, a cleared scoreboard record, the
    /// process, and the start timeout (the worker is killed if it does not say ready in time).
    /// nil when there is no such slot or the table is closed; a failure is the slot's `lastExit`.
    func launch(_ index: Int, startTimeout: Duration) -> Result<any WorkerProcess, IPCError>? {
        guard !isClosed, slots[index] != nil else { return nil }
        return update(index) { slot in
            slot.timer?.cancel()
            slot.replaceAfterJob = false
            slot.commands?.close()
            slot.commands = nil
            scoreboard.reset(slot: index)
            do throws(IPCError) {
                // The queue and the pidfd come out of the reserve: clients cannot have taken them.
                let process = try descriptorReserve.whileReleased { () throws(IPCError) -> any WorkerProcess in
                    slot.commands = try launcher.makeCommandQueue(slot: index)
                    return try launcher.launch(slot: index)
                }
                slot.process = process
                slot.state = .starting
                slot.timer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(startTimeout)) { [self] in
                    guard let slot = slots[index], slot.state == .starting, let current = slot.process, current.pid == process.pid else { return }
                    logger.error("worker in slot \(index) (pid \(process.pid)) did not say ready within \(DurationText.format(nanoseconds(startTimeout))); killing it",
                                 metadata: ["slot": "\(index)", "pid": "\(process.pid)"])
                    current.signal(SIGKILL)
                }
                logger.debug("spawned worker", metadata: ["slot": "\(index)", "pid": "\(process.pid)"])
                return .success(process)
            } catch {
                logger.error("cannot start a worker in slot \(index): \(error)")
                slot.lastExit = "could not start: \(error)"
                slot.process = nil
                return .failure(error)
            }
        }
    }

    /// The slot's worker said it is ready; false when that is stale (another process, or not
    /// starting any more).
    func markReady(_ index: Int, pid: Int32) -> Bool {
        update(index) { slot in
            guard slot.process?.pid == pid, slot.state == .starting else { return false }
            slot.timer?.cancel()
            slot.timer = nil
            slot.state = .ready
            logger.info("worker in slot \(index) (pid \(pid)) ready", metadata: ["slot": "\(index)", "pid": "\(pid)"])
            return true
        } ?? false
    }

    /// The slot's worker is done with its part of `job`: the slot is free again (unless it is
    /// stopping). Returns the slot as it is now; nil when the report is stale (another process, or
    /// another job).
    func jobEnded(_ index: Int, pid: Int32, job: Int) -> Slot? {
        update(index) { slot -> Slot? in
            guard slot.process?.pid == pid, slot.job == job else { return nil }
            slot.job = nil
            if slot.state == .busy { slot.state = .ready }
            return slot
        } ?? nil
    }

    /// Sends the slot's worker a command.
    func send(_ command: WorkerCommand, to index: Int) throws(IPCError) {
        guard let commands = slots[index]?.commands else { throw IPCError("no command queue", errno: EBADF) }
        try commands.send(command: command)
    }

    /// Kills the slot's worker, if it has one.
    func kill(_ index: Int) {
        slots[index]?.process?.signal(SIGKILL)
    }

    /// Sets the slot `stopping` and asks its worker to exit, killing it if it has not within
    /// `timeout`. False when no worker runs there (the slot is done at once).
    func askToExit(_ index: Int, timeout: Duration) -> Bool {
        update(index) { slot in
            slot.timer?.cancel()
            slot.timer = nil
            slot.state = .stopping
            guard let process = slot.process else { return false }
            if (try? slot.commands?.send(command: WorkerCommand(kind: .exit))) == nil {
                process.signal(SIGTERM)
            }
            slot.timer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(timeout)) { [self] in
                guard let current = slots[index], current.process?.pid == process.pid else { return }
                logger.warning("worker in slot \(index) (pid \(process.pid)) did not exit within \(DurationText.format(nanoseconds(timeout))); killing it",
                               metadata: ["slot": "\(index)", "pid": "\(process.pid)"])
                process.signal(SIGKILL)
            }
            return true
        } ?? false
    }

    /// A slot waiting to respawn is set `stopping` instead; false when it was not waiting.
    func cancelBackoff(_ index: Int) -> Bool {
        update(index) { slot in
            guard slot.state == .backoff else { return false }
            slot.timer?.cancel()
            slot.timer = nil
            slot.state = .stopping
            return true
        } ?? false
    }

    /// Closes and removes the slot's command queue (its worker is gone).
    func removeCommandQueue(_ index: Int) {
        update(index) { slot in
            slot.commands?.close()
            slot.commands = nil
        }
        launcher.removeCommandQueue(slot: index)
    }

    /// Removes every command queue name this pool could have made (`capacity` slots).
    func removeCommandQueues(capacity: Int) {
        for index in 0..<capacity { launcher.removeCommandQueue(slot: index) }
    }

    // MARK: Exits

    /// A slot's worker process has exited, as a fact for the controller to act on.
    struct Exit {
        let slot: Int
        let pid: Int32
        /// The job the worker was working on.
        let job: Int?
        /// nil when the process cannot be reaped yet (a tracer holds it).
        let status: ProcessExit?
        /// How it ended, for the logs and the job's record (with why the daemon killed it).
        let description: String
        /// The daemon had asked it to exit.
        let wasStopping: Bool
        let wasRetiring: Bool

        /// The worker exited with the status that means it cannot run here at all.
        var refusedToRun: Bool { status == .exited(WorkerRuntime.exitDoNotRespawn) }
    }

    /// A pidfd became readable: the process has exited (every thread of it). Reaps it and clears
    /// the slot's process and job; nil when the pidfd is no slot's. A process traced by someone
    /// else (strace, gdb) cannot be reaped until its tracer has collected it; it is dead all the
    /// same, so its slot goes on at once and the process is reaped later (`reapReleased`).
    func processExited(pidfd: Int32) -> Exit? {
        guard let index = slots.values.first(where: { $0.process?.pidfd == pidfd })?.index else { return nil }
        return update(index) { slot in
            let process = slot.process!
            let status = process.reap()
            // Reaping closed the pidfd: hold its place for the respawn.
            if status == nil { heldByTracer(process) } else { descriptorReserve.hold(1) }
            slot.timer?.cancel()
            slot.timer = nil
            slot.process = nil
            let text = status?.description ?? Self.unreapedExitDescription(pid: process.pid)
            let description = slot.killReason.map { "\($0); \(text)" } ?? text
            slot.lastExit = description
            slot.killReason = nil
            defer { slot.job = nil }
            return Exit(slot: index, pid: process.pid, job: slot.job, status: status, description: description,
                        wasStopping: slot.state == .stopping, wasRetiring: slot.retiring)
        }
    }

    /// A dead worker that its tracer has not collected yet: kept until the kernel lets it go.
    private func heldByTracer(_ process: any WorkerProcess) {
        unreaped.append(process)
        logger.warning("a worker died while traced; it is reaped once its tracer lets it go",
                       metadata: ["pid": "\(process.pid)", "tracer": "\(Self.tracer(of: process.pid).map(String.init) ?? "?")"])
    }

    /// SIGCHLD: a child changed state. Reaps the dead workers that tracers have let go since.
    func reapReleased() {
        unreaped.removeAll { process in
            guard let exit = process.reap() else { return false }
            logger.notice("reaped a worker that died while traced", metadata: ["pid": "\(process.pid)", "exit": "\(exit)"])
            return true
        }
    }

    /// The exit of a process that has died but cannot be reaped yet.
    static func unreapedExitDescription(pid: Int32) -> String {
        let tracer = tracer(of: pid).map { "traced by pid \($0)" } ?? "not reapable"
        return "died while \(tracer) (its exit status is known once the tracer lets it go)"
    }

    /// The pid tracing `pid` (TracerPid in /proc/PID/status), if any.
    static func tracer(of pid: Int32) -> Int32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("TracerPid:") }),
              let tracer = Int32(line.dropFirst("TracerPid:".count).trimmingCharacters(in: .whitespaces)), tracer != 0 else { return nil }
        return tracer
    }

    // MARK: Crash policy

    /// When a slot whose worker keeps dying is given up, and how long it waits before a respawn.
    struct CrashPolicy {
        /// Crashes within `window` that fail the slot.
        var limit: Int
        var window: Duration
        var backoffBase: Duration
        var backoffMax: Duration
    }

    enum CrashVerdict: Equatable {
        /// The slot is `failed`: it crashed `crashes` times within the window.
        case giveUp(crashes: Int)
        /// The slot is in `backoff`; `respawn` runs after the delay (nanoseconds).
        case respawn(delay: Int64, crashes: Int)
    }

    /// Counts a crash of the slot's worker (or a failed start) at `now` and applies the policy:
    /// the slot fails after `limit` crashes within the window, or waits to respawn with an
    /// exponential backoff. `respawn` runs when the wait is over, unless the slot was stopped or
    /// the table closed meanwhile.
    func recordCrash(_ index: Int, now: Int64, policy: CrashPolicy, respawn: @escaping () -> Void) -> CrashVerdict? {
        update(index) { slot in
            let window = nanoseconds(policy.window)
            slot.crashTimes = slot.crashTimes.filter { now - $0 < window } + [now]
            if slot.crashTimes.count >= policy.limit {
                slot.state = .failed
                return .giveUp(crashes: slot.crashTimes.count)
            }
            // Exponential backoff with jitter: 1x, 2x, 4x ... the base, capped, times a random
            // 0.5-1.0 so that slots crashing together do not respawn in lockstep.
            let exponent = min(slot.crashTimes.count - 1, 30)
            let ceiling = min(nanoseconds(policy.backoffBase) << exponent, nanoseconds(policy.backoffMax))
            let delay = Int64(Double(ceiling) * Double.random(in: 0.5...1.0, using: &random))
            slot.state = .backoff
            slot.timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
                guard slots[index]?.state == .backoff, !isClosed else { return }
                respawn()
            }
            return .respawn(delay: delay, crashes: slot.crashTimes.count)
        }
    }

    // MARK: Heartbeats

    /// Looks at every worker's heartbeat in the scoreboard periodically (a quarter of the timeout,
    /// within 10 ms and 1 s), until the table is closed; `timeout` is read at each look (a reload
    /// may change it).
    func checkHeartbeats(timeout: @escaping () -> Duration) {
        let limit = nanoseconds(timeout())
        let interval = max(min(limit / 4, 1_000_000_000), 10_000_000)
        eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(interval)) { [self] in
            guard !isClosed else { return }
            killHungWorkers(timeout: limit)
            checkHeartbeats(timeout: timeout)
        }
    }

    /// A worker that is up and has not beaten for `timeout` is hung (a deadlock, a stop signal, an
    /// endless loop): kill it; its exit is then reported like any other, with the reason.
    private func killHungWorkers(timeout: Int64) {
        let now = eventLoop.monotonicNanoseconds
        for index in indices {
            update(index) { slot in
                guard slot.state == .ready || slot.state == .busy, slot.killReason == nil, let process = slot.process else { return }
                let beat = scoreboard.heartbeat(slot: index)
                guard beat > 0, now - beat > timeout else { return }
                let silence = DurationText.format(now - beat)
                slot.killReason = "hung (no heartbeat for \(silence)), killed"
                logger.error("worker in slot \(index) (pid \(process.pid)) hung: no heartbeat for \(silence) (the limit is \(DurationText.format(timeout))); killing it",
                             metadata: ["slot": "\(index)", "pid": "\(process.pid)", "job": "\(slot.job.map(String.init) ?? "-")",
                                        MessageID.key: MessageID.workerHung])
                process.signal(SIGKILL)
            }
        }
    }
}

extension EventLoop {
    /// The loop's clock in nanoseconds: CLOCK_MONOTONIC on a real loop (the clock the workers'
    /// heartbeats use), the test's time on an `EmbeddedEventLoop`. The one clock the controller
    /// reads, so that its timers and its durations agree.
    var monotonicNanoseconds: Int64 { Int64(now.uptimeNanoseconds) }
}

extension DaemonConfiguration {
    var crashPolicy: SlotTable.CrashPolicy {
        SlotTable.CrashPolicy(limit: failureLimit, window: failureWindow, backoffBase: backoffBase, backoffMax: backoffMax)
    }
}
