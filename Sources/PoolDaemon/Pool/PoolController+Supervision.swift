import Foundation
import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Slots and their processes: spawn, readiness, exits, backoff, failure, resizing.
extension PoolController {
    /// Starts a worker in `slot`: a fresh command queue, a cleared scoreboard record, posix_spawn of
    /// our own binary, and a pidfd for the watcher.
    func spawn(slot index: Int) {
        // Once stopped, the IPC objects are gone and must stay so: nothing may create one again.
        guard lifecycle != .stopped, var slot = slots[index] else { return }
        slot.timer?.cancel()
        slot.replaceAfterJob = false
        let name = configuration.names.commands(slot: index)
        slot.commands?.close()
        MessageQueue.unlink(name: name)
        scoreboard.reset(slot: index)
        let arguments = [
            "poold", "worker", "--slot", "\(index)", "--prefix", configuration.names.prefix,
            "--daemon-pid", "\(getpid())", "--log-level", configuration.logLevel.rawValue,
            "--log-target", configuration.logTarget.rawValue,
        ] + (configuration.instance.map { ["--instance", $0] } ?? []) + configuration.faults.workerArguments + (configuration.faults.crashAtStartSlot == index ? ["--crash-at-start"] : [])
        do {
            // The queue and the pidfd come out of the reserve: clients cannot have taken them.
            let process = try descriptorReserve.whileReleased { () throws(IPCError) -> SpawnedProcess in
                // Non-blocking on our side: the loop must never wait on a worker. Depth 2 suffices,
                // one job at a time plus an exit request.
                slot.commands = try MessageQueue.create(name: name, depth: Self.commandQueueDepth, messageSize: MemoryLayout<WorkerCommand>.size, nonBlocking: true)
                // The doorbell, rung after each event the worker sends.
                let doorbell = watcher?.doorbell.descriptor
                return try SpawnedProcess.spawn(path: "/proc/self/exe",
                                                arguments: arguments + (doorbell == nil ? [] : ["--doorbell-fd", "\(SpawnedProcess.inheritedDescriptor)"]),
                                                environment: configuration.workerEnvironment, inheriting: doorbell)
            }
            slot.process = process
            slot.state = .starting
            slot.timer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(configuration.startTimeout)) { [self] in
                startTimedOut(slot: index, pid: process.pid)
            }
            slots[index] = slot
            watcher?.watch(pidfd: process.pidfd)
            logger.debug("spawned worker", metadata: ["slot": "\(index)", "pid": "\(process.pid)"])
        } catch {
            logger.error("cannot start a worker in slot \(index): \(error)")
            slot.lastExit = "could not start: \(error)"
            slot.process = nil
            slots[index] = slot
            crashed(slot: index)
        }
        noteChange()
        advanceRestart()
    }

    func workerSaidReady(slot index: Int, pid: Int32) {
        guard var slot = slots[index], slot.process?.pid == pid, slot.state == .starting else { return }
        slot.timer?.cancel()
        slot.timer = nil
        slot.state = .ready
        slots[index] = slot
        logger.info("worker in slot \(index) (pid \(pid)) ready", metadata: ["slot": "\(index)", "pid": "\(pid)"])
        if slot.takeover != nil, !slot.retiring {
            takeOver(slot: index)
        } else if slot.retiring || lifecycle == .draining {
            stopWorker(slot: index)
        } else {
            dispatch()
        }
        checkReady()
        noteChange()
        advanceRestart()
    }

    /// Sends `READY=1` (via `onReady`) once no initial worker is still starting.
    func checkReady() {
        guard lifecycle == .starting, !slots.values.contains(where: { $0.state == .starting }) else { return }
        lifecycle = .running
        onReady?()
        onReady = nil
        dispatch()  // jobs submitted while the pool was starting
    }

    private func startTimedOut(slot index: Int, pid: Int32) {
        guard let slot = slots[index], slot.state == .starting, let process = slot.process, process.pid == pid else { return }
        logger.error("worker in slot \(index) (pid \(pid)) did not say ready within \(DurationText.format(nanoseconds(configuration.startTimeout))); killing it",
                     metadata: ["slot": "\(index)", "pid": "\(pid)"])
        process.signal(SIGKILL)
    }

    /// Asks a worker to exit, and kills it if it has not within the stop timeout.
    func stopWorker(slot index: Int) {
        abandonTakeover(slot: index, reason: "the slot is being stopped")
        guard var slot = slots[index] else { return }
        slot.timer?.cancel()
        slot.timer = nil
        guard let process = slot.process else {
            // Nothing runs here (backoff or failed): the slot is done at once.
            slot.state = .stopping
            slots[index] = slot
            processGone(slot: index)
            return
        }
        slot.state = .stopping
        if (try? slot.commands?.send(WorkerCommand(kind: .exit))) == nil {
            process.signal(SIGTERM)
        }
        slot.timer = eventLoop.assumeIsolated().scheduleTask(in: timeAmount(configuration.stopTimeout)) { [self] in
            guard let current = slots[index], current.process?.pid == process.pid else { return }
            logger.warning("worker in slot \(index) (pid \(process.pid)) did not exit within \(DurationText.format(nanoseconds(configuration.stopTimeout))); killing it",
                           metadata: ["slot": "\(index)", "pid": "\(process.pid)"])
            process.signal(SIGKILL)
        }
        slots[index] = slot
        noteChange()
    }

    /// A pidfd became readable: the process has exited (every thread of it). Reap it, then decide
    /// what the slot does next. A process traced by someone else (strace, gdb) cannot be reaped
    /// until its tracer has collected it; it is dead all the same, so its slot and job go on at
    /// once and the process is reaped later (`reapReleasedProcesses`, on SIGCHLD).
    func handleProcessExit(pidfd: Int32) {
        guard let index = slots.values.first(where: { $0.process?.pidfd == pidfd })?.index,
              var slot = slots[index], let process = slot.process else { return }
        let exit = process.reap()
        // Reaping closed the pidfd: hold its place for the respawn.
        if exit == nil { heldByTracer(process) } else { descriptorReserve.hold(1) }
        slot.timer?.cancel()
        slot.timer = nil
        slot.process = nil
        let status = exit?.description ?? Self.unreapedExitDescription(pid: process.pid)
        let exitDescription = slot.killReason.map { "\($0); \(status)" } ?? status
        slot.lastExit = exitDescription
        slot.killReason = nil
        let wasStopping = slot.state == .stopping
        let job = slot.job
        slot.job = nil
        slots[index] = slot

        if let job {
            let replaceable = !wasStopping && exit != .exited(WorkerRuntime.exitDoNotRespawn) && acceptsReplacements && !slot.retiring
            participantDied(slot: index, pid: process.pid, jobID: job, exit: exitDescription, replaceable: replaceable)
        }
        if wasStopping {
            logger.debug("worker exited", metadata: ["slot": "\(index)", "pid": "\(process.pid)", "exit": "\(status)"])
            processGone(slot: index)
        } else if exit == .exited(WorkerRuntime.exitDoNotRespawn) {
            logger.error("worker in slot \(index) (pid \(process.pid)) exited with status \(WorkerRuntime.exitDoNotRespawn), which means do not respawn; slot \(index) failed (`poolctl pool restart \(index)` brings it back)",
                         metadata: ["slot": "\(index)", "pid": "\(process.pid)", MessageID.key: MessageID.slotFailed])
            slot.state = .failed
            slots[index] = slot
            abandonTakeover(slot: index, reason: "the slot failed: its worker cannot run here")
            failQueuedJobsThatCannotRun()
        } else {
            crashed(slot: index, death: (message: "worker in slot \(index) (pid \(process.pid)) died: \(exitDescription)",
                                         metadata: ["pid": "\(process.pid)", "exit": "\(exitDescription)"]))
        }
        // A slot that failed while the daemon drains may have been the last one with a process.
        finishShutdownIfIdle()
        checkReady()
        noteChange()
        dispatch()
        advanceRestart()
    }

    /// A dead worker that its tracer has not collected yet: kept until the kernel lets it go.
    private func heldByTracer(_ process: SpawnedProcess) {
        unreapedProcesses.append(process)
        logger.warning("a worker died while traced; it is reaped once its tracer lets it go",
                       metadata: ["pid": "\(process.pid)", "tracer": "\(Self.tracer(of: process.pid).map(String.init) ?? "?")"])
    }

    /// SIGCHLD: a child changed state. Reaps the dead workers that tracers have let go since.
    func reapReleasedProcesses() {
        unreapedProcesses.removeAll { process in
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

    /// A worker died unexpectedly (or could not be started): respawn after a backoff, or give the
    /// slot up when it crashed too often within the window. `death`, when a process died, is
    /// logged in one record with what follows from it ("...; respawning in 200ms").
    func crashed(slot index: Int, death: (message: String, metadata: Logger.Metadata)? = nil) {
        func logDeath(_ consequence: String, _ extra: Logger.Metadata = [:]) {
            guard let death else { return }
            let metadata = death.metadata.merging(extra) { $1 }.merging(["slot": "\(index)", MessageID.key: MessageID.workerDied]) { $1 }
            logger.error("\(death.message); \(consequence)", metadata: metadata)
        }
        guard var slot = slots[index] else { return }
        // While draining, a slot is respawned only to finish a dead worker's part of a job.
        if slot.retiring || (lifecycle == .draining && slot.takeover == nil) {
            logDeath("not respawning: the slot is being stopped")
            abandonTakeover(slot: index, reason: "the slot is being stopped")
            slot = slots[index]!
            slot.state = .stopping
            slots[index] = slot
            processGone(slot: index)
            return
        }
        let now = MonotonicClock.nanoseconds
        let window = nanoseconds(configuration.failureWindow)
        slot.crashTimes = slot.crashTimes.filter { now - $0 < window } + [now]
        if slot.crashTimes.count >= configuration.failureLimit {
            slot.state = .failed
            slots[index] = slot
            abandonTakeover(slot: index, reason: "the slot failed after \(slot.crashTimes.count) crashes within \(configuration.failureWindow)")
            logDeath("not respawning")
            logger.error("slot \(index) failed: \(slot.crashTimes.count) crashes within \(DurationText.format(nanoseconds(configuration.failureWindow))); `poolctl pool restart \(index)` brings it back",
                         metadata: ["slot": "\(index)", MessageID.key: MessageID.slotFailed])
            failQueuedJobsThatCannotRun()
            return
        }
        // Exponential backoff with jitter: 1x, 2x, 4x ... the base, capped, times a random 0.5-1.0
        // so that slots crashing together do not respawn in lockstep.
        let exponent = min(slot.crashTimes.count - 1, 30)
        let ceiling = min(nanoseconds(configuration.backoffBase) << exponent, nanoseconds(configuration.backoffMax))
        let delay = Int64(Double(ceiling) * Double.random(in: 0.5...1.0, using: &random))
        slot.state = .backoff
        slot.timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
            guard var current = slots[index], current.state == .backoff, lifecycle != .stopped else { return }
            guard lifecycle != .draining || current.takeover != nil else { return stopBackedOffSlot(index) }
            current.restarts += 1
            slots[index] = current
            logger.info("respawning the worker in slot \(index) (restart \(current.restarts))",
                        metadata: ["slot": "\(index)", "restarts": "\(current.restarts)", MessageID.key: MessageID.workerRespawned])
            spawn(slot: index)
        }
        slots[index] = slot
        let backoff = "respawning in \(delay / 1_000_000)ms (crash \(slot.crashTimes.count) within \(DurationText.format(window)); the slot fails at \(configuration.failureLimit))"
        if death != nil {
            logDeath(backoff, ["delayMillis": "\(delay / 1_000_000)"])
        } else {
            logger.info("slot \(index): \(backoff)", metadata: ["slot": "\(index)", "delayMillis": "\(delay / 1_000_000)"])
        }
    }

    /// Whether a worker that dies in a job is replaced to finish its part: while the pool runs, and
    /// while it drains (until the deadline), since the drain exists to let running jobs complete.
    var acceptsReplacements: Bool {
        lifecycle == .running || (lifecycle == .draining && !drain.deadlinePassed)
    }

    /// A slot waiting to respawn during the drain whose takeover went away (its job ended): it
    /// stays down.
    func stopBackedOffSlot(_ index: Int) {
        guard var slot = slots[index], slot.state == .backoff else { return }
        slot.timer?.cancel()
        slot.timer = nil
        slot.state = .stopping
        slots[index] = slot
        processGone(slot: index)
    }

    /// A stopping slot has no process any more: remove it if the pool shrank, respawn it if it was
    /// brought back meanwhile, or leave it stopped while the daemon shuts down.
    func processGone(slot index: Int) {
        guard var slot = slots[index] else { return }
        slot.commands?.close()
        slot.commands = nil
        MessageQueue.unlink(name: configuration.names.commands(slot: index))
        if lifecycle == .draining || lifecycle == .stopped {
            slots[index] = slot
            finishShutdownIfIdle()
        } else if slot.retiring {
            slots[index] = nil
            logger.info("slot \(index) removed: the pool shrank", metadata: ["slot": "\(index)"])
            advanceRestart()
        } else {
            slots[index] = slot
            spawn(slot: index)
        }
        noteChange()
    }

    /// Grows or shrinks the pool. New slots start at once; surplus idle workers are asked to exit,
    /// busy ones exit when their job is done. Asking for the current size again retries failed slots.
    func resize(to size: Int) {
        targetSize = size
        for index in 0..<size {
            if var slot = slots[index] {
                slot.retiring = false
                if slot.state == .failed {
                    slot.crashTimes = []
                    slots[index] = slot
                    spawn(slot: index)
                } else {
                    slots[index] = slot
                }
            } else {
                slots[index] = Slot(index: index)
                spawn(slot: index)
            }
        }
        for index in slots.keys.sorted() where index >= size {
            guard var slot = slots[index], !slot.retiring else { continue }
            slot.retiring = true
            slots[index] = slot
            switch slot.state {
            case .ready, .starting, .backoff, .failed: stopWorker(slot: index)
            case .busy, .stopping: break
            }
        }
        logger.info("pool resized to \(Self.workers(size))", metadata: ["workers": "\(size)"])
        failQueuedJobsThatCannotRun()
        noteChange()
        dispatch()
    }

    /// Slots that can take work now or soon (not failed, not leaving).
    var usableSlotCount: Int {
        slots.values.filter { !$0.retiring && $0.state != .failed }.count
    }
}

func timeAmount(_ duration: Duration) -> TimeAmount {
    .nanoseconds(nanoseconds(duration))
}

func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
}
