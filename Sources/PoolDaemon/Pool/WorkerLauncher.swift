import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// How the slot table starts workers and reaches them: real processes and message queues in the
/// daemon, fakes in the in-process tests (Tests/PoolControllerTests).
protocol WorkerLauncher {
    /// A new command queue for the slot's next worker, in place of any earlier one.
    func makeCommandQueue(slot: Int) throws(IPCError) -> any WorkerCommandQueue
    /// Removes the slot's command queue from the system (its descriptor is closed by its holder).
    func removeCommandQueue(slot: Int)
    /// Starts the slot's worker.
    func launch(slot: Int) throws(IPCError) -> any WorkerProcess
}

/// A running (or exited, not yet reaped) worker.
protocol WorkerProcess: Sendable {
    var pid: Int32 { get }
    /// Readable when the process has exited: what the event watcher polls.
    var pidfd: Int32 { get }
    @discardableResult func signal(_ signal: Int32) -> Bool
    /// The exit status once the process has exited (closing the pidfd); nil while it runs or
    /// while a tracer holds it.
    func reap() -> ProcessExit?
}

/// The daemon's end of a worker's command queue.
protocol WorkerCommandQueue {
    var depth: Int { get }
    var messageSize: Int { get }
    func send(command: WorkerCommand) throws(IPCError)
    func close()
}

extension SpawnedProcess: WorkerProcess {}

extension MessageQueue: WorkerCommandQueue {
    func send(command: WorkerCommand) throws(IPCError) {
        try send(command)
    }
}

/// Workers as processes: posix_spawn of our own binary, one command queue per slot.
struct ProcessLauncher: WorkerLauncher {
    let configuration: DaemonConfiguration
    /// Handed to each worker (its fd 3), which rings it after each event it sends.
    var doorbell: Doorbell?
    static let commandQueueDepth = 2

    func makeCommandQueue(slot: Int) throws(IPCError) -> any WorkerCommandQueue {
        let name = configuration.names.commands(slot: slot)
        MessageQueue.unlink(name: name)
        // Non-blocking on our side: the loop must never wait on a worker. Depth 2 suffices, one
        // job at a time plus an exit request.
        return try MessageQueue.create(name: name, depth: Self.commandQueueDepth, messageSize: MemoryLayout<WorkerCommand>.size,
                                       nonBlocking: true)
    }

    func removeCommandQueue(slot: Int) {
        MessageQueue.unlink(name: configuration.names.commands(slot: slot))
    }

    func launch(slot: Int) throws(IPCError) -> any WorkerProcess {
        let arguments = [
            "poold", "worker", "--slot", "\(slot)", "--prefix", configuration.names.prefix,
            "--daemon-pid", "\(getpid())", "--log-level", configuration.logLevel.rawValue,
            "--log-target", configuration.logTarget.rawValue,
        ] + (configuration.instance.map { ["--instance", $0] } ?? []) + configuration.faults.workerArguments
            + (configuration.faults.crashAtStartSlot == slot ? ["--crash-at-start"] : [])
            + (doorbell == nil ? [] : ["--doorbell-fd", "\(SpawnedProcess.inheritedDescriptor)"])
        return try SpawnedProcess.spawn(path: "/proc/self/exe", arguments: arguments, environment: configuration.workerEnvironment,
                                        inheriting: doorbell?.descriptor)
    }
}
