import Logging
import NIOCore
import NIOPosix
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The daemon from start to exit: claims the socket, creates the pool's IPC objects, starts the
/// watcher, the workers and the control server on one event loop, and tears everything down in
/// order when asked to stop.
public enum Daemon {
    /// Maximum size of one varlink message from a client.
    static let maxMessageSize = 1 << 20

    /// Runs until shutdown; returns the process exit status. `signalDescriptor` is a signalfd for
    /// SIGTERM, SIGINT and SIGHUP, made in `main` before any thread existed.
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

        let names = configuration.names
        // The scoreboard first: it claims the prefix (removing a dead instance that had it), and
        // its lock tells other instances this one lives. Then the leftovers of dead instances.
        // Both read /dev/shm synchronously, before the event loop exists.
        let scoreboard: Scoreboard
        do {
            scoreboard = try StaleInstanceCleaner.claim(names: names, capacity: configuration.maxWorkers, logger: logger)
        } catch {
            logger.critical("cannot claim the IPC prefix: \(error)")
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
            return 1
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let notifier = ServiceNotifier(environment: environment)
        let stopped = loop.makePromise(of: Void.self)

        let setUp: EventLoopFuture<NIOLoopBound<PoolController>> = loop.submit {
            let controller = PoolController(configuration: configuration, eventLoop: loop, logger: logger,
                                            scoreboard: scoreboard, events: events, notifier: notifier)
            return NIOLoopBound(controller, eventLoop: loop)
        }
        let channel: any Channel
        do {
            let bound = try setUp.wait()
            let watcher = try EventWatcher(events: events, signalDescriptor: signalDescriptor) { batch in
                loop.execute { bound.value.handle(batch) }
            }
            try loop.submit {
                bound.value.watcher = watcher
                bound.value.onStopped = { stopped.succeed() }
            }.wait()
            watcher.start()
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(VarlinkFrameDecoder(maxMessageSize: maxMessageSize)))
                        try channel.pipeline.syncOperations.addHandler(VarlinkConnectionHandler(controller: bound.value))
                    }
                }
            if let activated {
                channel = try bootstrap.withBoundSocket(activated).wait()
            } else {
                channel = try bootstrap.bind(unixDomainSocketPath: configuration.socketPath, cleanupExistingSocketFile: false).wait()
            }
            try loop.submit {
                let controller = bound.value
                controller.onReady = {
                    let status = controller.statusReply()
                    notifier.notify("READY=1\nSTATUS=" + controller.statusLine(status))
                    logger.info("ready", metadata: ["socket": "\(activated == nil ? configuration.socketPath : "fd 3 (socket activation)")",
                                                    "workers": "\(status.poolSize)", "ipcPrefix": "\(names.prefix)"])
                    controller.startWatchdog(environment: environment)
                }
                controller.start()
            }.wait()
        } catch {
            logger.critical("cannot start: \(error)")
            // Workers may have been spawned; shutting down stops them and removes the IPC objects.
            if let bound = try? setUp.wait() {
                loop.execute {
                    bound.value.onStopped = { stopped.succeed() }
                    bound.value.beginShutdown(reason: "start-up failed")
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
