import CPooldShim
import Logging
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// The worker process: spawned by the daemon as `poold worker`, it opens its command queue, the
/// event queue and the scoreboard, says ready, and runs its share of each job it is sent.
public struct WorkerRuntime {
    /// Exit status that tells the supervisor not to respawn: the worker cannot work in this setup
    /// (its IPC objects are missing or unusable), and a new one would fail the same way.
    public static let exitDoNotRespawn: Int32 = 78  // EX_CONFIG

    let slot: Int
    let names: IPCNames
    let daemonPID: pid_t
    /// Rung after each event, to wake the daemon's event loop (nil: the daemon polls the queue).
    let doorbell: Doorbell?
    let faults: FaultInjection
    let logger: Logger

    public init(slot: Int, names: IPCNames, daemonPID: pid_t, doorbellDescriptor: Int32? = nil, faults: FaultInjection, logger: Logger) {
        self.doorbell = doorbellDescriptor.map(Doorbell.init(descriptor:))
        self.faults = faults
        self.slot = slot
        self.names = names
        self.daemonPID = daemonPID
        // Every record a worker writes says which slot and process it comes from.
        var logger = logger
        logger[metadataKey: "slot"] = "\(slot)"
        logger[metadataKey: "pid"] = "\(getpid())"
        self.logger = logger
    }

    public func run() -> Int32 {
        // Die with the daemon. PDEATHSIG fires when the spawning thread exits, which is the daemon's
        // event loop thread (alive as long as the daemon); the getppid check closes the window
        // where the daemon died before the prctl.
        _ = pool_set_parent_death_signal(SIGKILL)
        guard getppid() == daemonPID else { return 0 }

        let commands: MessageQueue, events: MessageQueue, scoreboard: Scoreboard
        do {
            commands = try MessageQueue.open(name: names.commands(slot: slot))
            events = try MessageQueue.open(name: names.events)
            scoreboard = try Scoreboard.open(name: names.scoreboard)
        } catch {
            logger.critical("cannot open the pool's IPC objects: \(error)")
            return Self.exitDoNotRespawn
        }
        let record = scoreboard.record(slot: slot)
        let pid = getpid()
        record.pid.store(pid, ordering: .relaxed)
        record.beat()
        do {
            try send(WorkerEvent(kind: .ready, slot: slot, pid: pid), on: events)
        } catch {
            logger.critical("cannot reach the daemon: \(error)")
            return Self.exitDoNotRespawn
        }
        logger.debug("ready")

        let mappings = JobSegmentMappings(names: names)
        // One logger for every job, its metadata set in place: a copy per job, made and given two
        // keys, copied the logger's storage, handler and metadata each time (a third of what a
        // worker did per trivial job, outside the job itself).
        var jobLogger = logger
        var reports = 0
        while true {
            let command: WorkerCommand?
            do {
                // A bounded wait keeps the heartbeat fresh while idle and notices an orphaned worker.
                command = try commands.receive(WorkerCommand.self, deadlineRealtimeNanos: MonotonicClock.realtimeNanoseconds + 1_000_000_000)
            } catch {
                logger.critical("command queue failed: \(error)")
                return 1
            }
            record.beat()
            guard let command else {
                // Idle: orphaned by a daemon that died before PDEATHSIG was set? (A command comes
                // from a live daemon: asking per job too was two system calls, 3% of a worker's
                // time for a trivial job.)
                guard getppid() == daemonPID else { return 0 }
                mappings.dropRetired()
                continue
            }
            switch command.kind {
            case .exit?:
                logger.debug("exiting on request")
                return 0
            case .runJob?:
                let outcome = runJob(command, pid: pid, record: record, mappings: mappings, logger: &jobLogger)
                let event = WorkerEvent(kind: .jobEnded, slot: slot, pid: pid, jobID: Int(command.jobID),
                                        outcome: outcome.outcome, errorCode: outcome.errorCode, reason: outcome.reason)
                reports += 1
                do {
                    if command.attempt == 0, reports == faults.dieAfterReport {
                        try events.send(event)
                        FaultInjection.die()
                    }
                    try send(event, on: events)
                } catch {
                    logger.critical("cannot report to the daemon: \(error)")
                    return 1
                }
            case nil:
                logger.error("unknown command \(command.kindRaw); ignored")
            }
        }
    }

    private func send(_ event: WorkerEvent, on events: MessageQueue) throws(IPCError) {
        try events.send(event)
        doorbell?.ring()
    }

    /// Runs the worker's part of a job, logging through `jobLogger` (this worker's logger, given
    /// the job's metadata).
    private func runJob(_ command: WorkerCommand, pid: pid_t, record: Scoreboard.Record, mappings: JobSegmentMappings,
                        logger jobLogger: inout Logger) -> (outcome: WorkerEvent.Outcome, errorCode: Int32, reason: String) {
        let jobID = Int(command.jobID)
        let participant = Int(command.participant)
        let segment: JobSegment
        do {
            segment = try mappings.attach(id: Int(command.segmentID))
        } catch {
            logger.error("cannot open the job's segment: \(error)", metadata: ["job": "\(jobID)"])
            return (.failed, error.errno, "cannot open the job's segment: \(error)")
        }
        guard participant < segment.participants, let kind = JobCatalog.kind(code: segment.kind) else {
            let reason = "job \(jobID) has no participant \(participant) or an unknown kind \(segment.kind)"
            logger.error("\(reason)")
            return (.failed, EINVAL, reason)
        }
        let mine = segment.participant(participant)
        mine.pid.store(Int64(pid), ordering: .relaxed)
        mine.slot.store(Int64(slot), ordering: .relaxed)
        record.jobID.store(UInt64(jobID), ordering: .relaxed)
        defer { record.jobID.store(0, ordering: .relaxed) }
        logger.debug("running \(kind.name) job \(jobID) as participant \(participant)")
        jobLogger[metadataKey: "job"] = .string(String(jobID))
        jobLogger[metadataKey: "kind"] = .string(kind.name)
        jobLogger.logLevel = command.isQuiet ? max(logger.logLevel, .warning) : logger.logLevel
        let attempt = Int(command.attempt)
        if attempt > 0 { logger.notice("taking over participant \(participant) of job \(jobID) from a worker that died (attempt \(attempt))") }
        let context = ParticipantContext(segment: segment, participant: participant, attempt: attempt, slot: slot,
                                         record: record, faults: attempt == 0 ? faults : FaultInjection(), logger: jobLogger)
        let outcome = kind.run(context)
        guard outcome == .failed else { return (outcome, 0, "") }
        return (outcome, context.failure.errno, context.failure.reason ?? "the \(kind.name) participant failed without saying why")
    }
}
