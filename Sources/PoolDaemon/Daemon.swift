import Logging
import NIOCore
import NIOPosix
import PoolHistory
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The daemon from start to exit: claims the socket, creates the pool's IPC objects, starts the
/// watcher, the workers and the control server on one event loop, and tears everything down in
/// order when asked to stop.
public enum Daemon {
    /// Runs until shutdown; returns the process exit status. `signalDescriptor` is a signalfd for
    /// SIGTERM, SIGINT, SIGHUP and SIGCHLD, made in `main` before any thread existed.
    public static func run(configuration: DaemonConfiguration, signalDescriptor: Int32, environment: [String: String],
                           logger: Logger) -> Int32 {
        // With socket activation systemd owns the socket and its path; otherwise the daemon claims
        // the path (never taking it from a live server) and removes it on exit.
        let activated: Int32?
        do {
            activated = try SocketActivation.listeningSocket(environment: environment)
        } catch {
            logger.critical("\(error)")
            return 1
        }
        var claim: SocketClaim?
        if activated == nil {
            do {
                claim = try SocketClaim.acquire(path: configuration.socketPath)
            } catch {
                logger.critical("\(error)")
                return 1
            }
        }
        defer { claim?.release() }

        // The job history is read before the loop serves, so that the first ListJobs already sees
        // earlier jobs; it is closed, with its last writes, once the loop has stopped.
        let history: (store: JobHistory, recovered: RecoveredHistory)?
        do {
            history = try openHistory(configuration: configuration, logger: logger)
        } catch {
            logger.critical("\(error)")
            return 1
        }
        defer { history?.store.close() }

        // The event loop before any IPC object: NIO cannot report a failure to make one (it traps,
        // on EMFILE for instance), and a trap must find nothing created yet.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()

        let names = configuration.names
        // The scoreboard first: it claims the prefix (removing a dead instance that had it), and
        // its lock tells other instances this one lives. Then the leftovers of dead instances.
        // Both read /dev/shm synchronously, before the event loop runs anything.
        let scoreboard: Scoreboard
        do {
            scoreboard = try StaleInstanceCleaner.claim(names: names, capacity: configuration.maxWorkers, logger: logger)
        } catch {
            logger.critical("cannot claim the IPC prefix: \(error)")
            try? group.syncShutdownGracefully()
            return 1
        }
        StaleInstanceCleaner.removeDeadInstances(except: names.prefix, logger: logger)
        let events: MessageQueue
        do {
            // Deep enough for a burst from every worker at once, within msg_max.
            events = try MessageQueue.create(name: names.events, depth: SystemLimits.messageQueueMaxDepth,
                                             messageSize: MemoryLayout<WorkerEvent>.size, nonBlocking: true)
        } catch {
            logger.critical("cannot create the pool's IPC objects: \(error)")
            SharedSegment.unlink(name: names.scoreboard)
            try? group.syncShutdownGracefully()
            return 1
        }

        // The workers ring it after each event they send; the event loop waits on it (not on the
        // queue, which NIO cannot wait on) and takes the events itself.
        let doorbell: Doorbell
        do {
            doorbell = try Doorbell.make()
        } catch {
            logger.critical("cannot create the workers' doorbell: \(error)")
            MessageQueue.unlink(name: names.events)
            SharedSegment.unlink(name: names.scoreboard)
            try? group.syncShutdownGracefully()
            return 1
        }

        let notifier = ServiceNotifier(environment: environment)
        let stopped = loop.makePromise(of: Void.self)

        let setUp: EventLoopFuture<NIOLoopBound<PoolController>> = loop.submit {
            let controller = PoolController(configuration: configuration, eventLoop: loop, logger: logger,
                                            scoreboard: scoreboard, events: events, notifier: notifier,
                                            launcher: ProcessLauncher(configuration: configuration, doorbell: doorbell))
            if let history { controller.adoptHistory(history.store, recovered: history.recovered) }
            return NIOLoopBound(controller, eventLoop: loop)
        }
        let channel: any Channel
        do {
            let bound = try setUp.wait()
            let watcher = try EventWatcher(events: events, signalDescriptor: signalDescriptor) { batch in
                loop.execute { bound.value.receive(batch) }
            }
            try loop.submit {
                bound.value.watcher = watcher
                bound.value.onStopped = { stopped.succeed() }
            }.wait()
            // The workers' events are read on the loop itself, woken by the doorbell they ring.
            _ = try NIOPipeBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(WorkerEventReader(events: events) { bound.value.receive($0) })
                    }
                }
                .takingOwnershipOfDescriptor(input: doorbell.descriptor).wait()
            watcher.start()
            // Now that the daemon's own descriptors are open: the connections get what is left.
            var fitted = configuration.control
            DescriptorBudget.fit(&fitted, workers: configuration.workers, logger: logger)
            let control = fitted
            logger.debug("control socket limits", metadata: [
                "maxConnections": "\(control.maxConnections)", "maxConnectionsPerUID": "\(control.maxConnectionsPerUID)",
                "controlGroup": "\(control.controlGroup)"])
            let server = try loop.submit {
                NIOLoopBound(ControlServer(controller: bound.value, settings: control, logger: logger), eventLoop: loop)
            }.wait()
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelInitializer { channel in
                    // Out of descriptors (EMFILE, ENFILE) or memory, accept fails at once again and
                    // again while clients wait: pause accepting instead of spinning.
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AcceptBackoff(logger: logger))
                    }
                }
                // A client that shuts down its writing side still gets its replies.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.control.outputLowWaterMark,
                                                                        high: configuration.control.outputHighWaterMark))
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try server.value.initialize(channel) }
                }
            if let activated {
                channel = try bootstrap.withBoundSocket(activated).wait()
            } else {
                channel = try bootstrap.bind(unixDomainSocketPath: configuration.socketPath, cleanupExistingSocketFile: false).wait()
                if let mode = configuration.control.socketMode, chmod(configuration.socketPath, mode) != 0 {
                    throw SocketClaim.Refusal(description: "cannot set the socket's mode to \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
                }
            }
            try loop.submit {
                let controller = bound.value
                controller.onReady = {
                    let status = controller.statusReply()
                    notifier.notify("READY=1\nSTATUS=" + controller.statusLine(status))
                    let socket = activated == nil ? configuration.socketPath : "fd 3 (socket activation)"
                    logger.info("ready: \(status.poolSize) workers, socket \(socket), IPC prefix \(names.prefix)", metadata: ["socket": "\(socket)",
                                                    "workers": "\(status.poolSize)", "ipcPrefix": "\(names.prefix)"])
                    controller.startWatchdog(environment: environment)
                }
                controller.startPool()
            }.wait()
        } catch {
            logger.critical("cannot start: \(error)")
            // Workers may have been spawned; shutting down stops them and removes the IPC objects.
            if let bound = try? setUp.wait() {
                loop.execute {
                    bound.value.onStopped = { stopped.succeed() }
                    bound.value.requestStop(reason: "start-up failed")
                }
                try? stopped.futureResult.wait()
            } else {
                MessageQueue.unlink(name: names.events)
                SharedSegment.unlink(name: names.scoreboard)
            }
            try? group.syncShutdownGracefully()
            return 1
        }

        try? stopped.futureResult.wait()
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        notifier.flush(timeoutSeconds: 1)
        logger.info("stopped")
        return 0
    }
}
