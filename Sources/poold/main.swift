import ArgumentParser
import CPooldShim
import Logging
import PoolDaemon
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

// Before anything else, while this is the only thread: take the socket-activation variables out of
// the environment (so no child inherits them) and block the signals the daemon handles through a
// signalfd (threads created later inherit the mask; workers get theirs reset by posix_spawn).
// SIGCHLD says when a tracer has let go of a dead worker, which can then be reaped.
let inheritedEnvironment = ProcessEnvironment.takeActivationVariables()
let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGCHLD, 0]
let signalDescriptor = handledSignals.withUnsafeBufferPointer { pool_signalfd_for($0.baseAddress!) }
signal(SIGPIPE, SIG_IGN)

extension LogTarget: ExpressibleByArgument {}

/// The daemon itself is the root command, so that `poold --help` and poold(8) show its options.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poold",
        abstract: "A supervised pool of worker processes that runs the concurrency notebook's jobs.",
        usage: "poold [<options>]",
        discussion: """
            Runs in the foreground. Logs go to the journal under systemd (or when journald runs and stderr is no terminal), \
            else to stderr. Control it with poolctl(1) over the varlink socket: --socket, else $POOLD_SOCKET, else \
            /run/poold.sock for root or $XDG_RUNTIME_DIR/poold.sock for anyone else.

            Examples:
              poold --socket /tmp/p.sock --workers 4
              poold --config /etc/poold.conf --drain-timeout 2m
              systemd-socket-activate -l /tmp/p.sock poold
            """,
        version: PooldVersion.string
    )

    @Option(help: "The control socket's path.")
    var socket: String?

    @Option(help: "Worker processes in the pool (default: the configuration file's, else the number of CPUs).")
    var workers: Int?

    @Option(help: "A configuration file of `option = value` lines (any option below, without its dashes; the command line wins). SIGHUP re-reads it and applies `workers`. With a leading '-' (--config=-/etc/poold.conf), as in systemd's EnvironmentFile=-, a missing file is no error.")
    var config: String?

    @Option(help: "The largest pool size a resize may ask for (lowered at start to what the kernel's queue limits allow, as the log says).")
    var maxWorkers: Int = 256

    @Option(help: "Prefix of this instance's message queues and shared memory (default: /poold-<pid>).")
    var ipcPrefix: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "auto (the journal under systemd or when journald runs and stderr is no terminal), journal or stderr.")
    var logTarget: LogTarget = .auto

    @Option(help: "How long a worker may go without a heartbeat before it is killed as hung (e.g. 10s, 500ms).")
    var heartbeatTimeout: String = "10s"

    @Option(help: "Where the job history lives (default: $STATE_DIRECTORY, else /var/lib/poold for root, else $XDG_STATE_HOME/poold or ~/.local/state/poold).")
    var stateDir: String?

    @Option(help: "How many finished jobs the history keeps (the newest).")
    var historyLimit: Int = 1000

    @Option(help: "Besides root and the daemon's own user, members of this group (a name or a gid) may Run, Cancel, Resize and Shutdown (default: poold).")
    var controlGroup: String?

    @Option(help: "How long a client may take to send a whole message, or to take its replies (e.g. 10s).")
    var clientTimeout: String = "10s"

    @Option(help: "How long a connection with no call in progress stays open (e.g. 10m).")
    var idleTimeout: String = "10m"

    @Option(help: "Control connections open at once; the first call of one above it gets TooManyConnections.")
    var maxConnections: Int = 256

    @Option(help: "Control connections one user (peer uid) may have open at once.")
    var maxConnectionsPerUid: Int = 64

    @Option(help: "Jobs that may wait in the queue; Run gets ResourceLimit above it.")
    var maxQueuedJobs: Int = 1000

    @Option(help: "How many jobs a second have their start, end and workers' lines logged; the others are summed up in a line a second, and failures are always logged (0: every job). 100 jobs of three lines each stay within journald's default rate limit (10,000 records in 30 s).")
    var jobLogRate: Int = 100

    @Option(help: "The permission bits of the socket the daemon binds, in octal (e.g. 0666 to let anyone connect: reading is open to all, control is still checked).")
    var socketMode: String?

    @Option(help: "On SIGTERM or Shutdown, how long running jobs may finish before they are cancelled (e.g. 30s; 0: at once; default: the configuration file's, else 30s).")
    var drainTimeout: String?

    @Option(help: ArgumentHelp("Testing only: inject a fault (crash-at-start=SLOT, die-holding-lock=N, die-consuming=N, die-producing=N).",
                               visibility: .hidden))
    var fault: [String] = []

    /// The options that need more than ArgumentParser's parsing, checked and converted once, in
    /// the types the daemon takes: `run` starts it with these.
    struct CheckedOptions {
        let logLevel: Logger.Level
        let faults: FaultInjection
        let clientTimeout: Duration
        let idleTimeout: Duration
        let socketMode: mode_t?
        let drainTimeout: Duration?
        let heartbeatTimeout: Duration
    }

    func checkedOptions() throws(ValidationError) -> CheckedOptions {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        guard maxWorkers >= 1 else { throw ValidationError("--max-workers must be at least 1") }
        if let workers, workers > maxWorkers { throw ValidationError("--workers \(workers) is above --max-workers \(maxWorkers)") }
        if let ipcPrefix, let problem = IPCNames.problem(with: ipcPrefix) { throw ValidationError(problem) }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
        let faults: FaultInjection
        do {
            faults = try FaultInjection(specifications: fault)
        } catch {
            throw ValidationError("--fault: \(error)")
        }
        guard historyLimit >= 1 else { throw ValidationError("--history-limit must be at least 1, not \(historyLimit)") }
        if let stateDir, stateDir.isEmpty { throw ValidationError("--state-dir must not be empty") }
        guard maxWorkers <= Serve.maxWorkersLimit else {
            throw ValidationError("--max-workers may be at most \(Serve.maxWorkersLimit) (each worker is a process, a queue and a scoreboard slot)")
        }
        guard let client = DurationText.nanoseconds(clientTimeout), client >= 100_000_000 else {
            throw ValidationError("--client-timeout must be a duration of at least 100ms (e.g. 10s), not '\(clientTimeout)'")
        }
        guard let idle = DurationText.nanoseconds(idleTimeout), idle >= client else {
            throw ValidationError("--idle-timeout must be a duration no shorter than --client-timeout (e.g. 10m), not '\(idleTimeout)'")
        }
        guard maxConnections >= 1, maxConnectionsPerUid >= 1 else {
            throw ValidationError("--max-connections and --max-connections-per-uid must be at least 1")
        }
        guard maxQueuedJobs >= 0 else { throw ValidationError("--max-queued-jobs must be 0 or more") }
        guard jobLogRate >= 0 else { throw ValidationError("--job-log-rate must be 0 (every job) or more, not \(jobLogRate)") }
        var mode: mode_t?
        if let socketMode {
            guard let bits = Serve.mode(socketMode) else {
                throw ValidationError("--socket-mode must be octal permission bits such as 0660 or 0666, not '\(socketMode)'")
            }
            mode = bits
        }
        var drain: Duration?
        if let drainTimeout {
            guard let nanoseconds = DurationText.nanoseconds(drainTimeout) else {
                throw ValidationError("--drain-timeout must be a duration such as 30s, 500ms or 0, not '\(drainTimeout)'")
            }
            drain = .nanoseconds(nanoseconds)
        }
        guard let heartbeat = DurationText.nanoseconds(heartbeatTimeout), heartbeat >= 100_000_000 else {
            throw ValidationError("--heartbeat-timeout must be a duration of at least 100ms (e.g. 10s), not '\(heartbeatTimeout)'")
        }
        return CheckedOptions(logLevel: level, faults: faults, clientTimeout: .nanoseconds(client), idleTimeout: .nanoseconds(idle),
                              socketMode: mode, drainTimeout: drain, heartbeatTimeout: .nanoseconds(heartbeat))
    }

    func run() throws {
        let checked = try checkedOptions()
        let level = checked.logLevel
        let environment = inheritedEnvironment.daemon
        let target = logTarget.resolved(environment: environment)
        let socketPath = socket ?? DefaultSocket.path(environment: environment)
        let stateDirectory = stateDir ?? StateDirectory.path(environment: environment)
        let instance = PoolInstance.identifier(stateDirectory: stateDirectory, socketPath: socketPath)
        let logger = target.logger(label: "poold", level: level, instance: instance)
        var configuration = DaemonConfiguration(
            socketPath: socketPath,
            workers: min(workers ?? ProcessEnvironment.cpuCount, maxWorkers),
            maxWorkers: maxWorkers,
            names: ipcPrefix.map(IPCNames.init(prefix:)) ?? IPCNames.forProcess(getpid()),
            logLevel: level,
            logTarget: target,
            workerEnvironment: inheritedEnvironment.forWorkers)
        configuration.configurationFile = config
        if let file = commandLine.file {
            configuration.configurationFileValues = Dictionary(file.entries.map { ($0.key, $0.value) }) { $1 }
        }
        configuration.commandLineKeys = commandLine.commandLineKeys
        configuration.heartbeatTimeout = checked.heartbeatTimeout
        if let drain = checked.drainTimeout { configuration.drainTimeout = drain }
        configuration.faults = checked.faults
        configuration.stateDirectory = stateDirectory
        configuration.instance = instance
        configuration.historyLimit = historyLimit
        configuration.maxQueuedJobs = maxQueuedJobs
        configuration.jobLogRate = jobLogRate
        do {
            configuration.control.controlGroup = try ControlGroup.resolve(controlGroup ?? ControlGroup.defaultName, required: controlGroup != nil)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        if configuration.control.controlGroup.gid == nil {
            // Only the default group can be missing (one asked for by name must exist): normal for
            // someone running their own poold outside the packaged service.
            let owner = getuid() == 0 ? "root" : "root and uid \(getuid()) (this daemon's)"
            logger.notice("no group '\(configuration.control.controlGroup.name)' exists: only \(owner) may Run, Cancel, Resize and Shutdown")
        }
        configuration.control.clientTimeout = checked.clientTimeout
        configuration.control.idleTimeout = checked.idleTimeout
        configuration.control.maxConnections = maxConnections
        configuration.control.maxConnectionsPerUID = maxConnectionsPerUid
        configuration.control.socketMode = checked.socketMode
        guard signalDescriptor >= 0 else {
            logger.critical("cannot create a signalfd: \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        let status = Daemon.run(configuration: configuration, signalDescriptor: signalDescriptor,
                                environment: environment, logger: logger)
        throw ExitCode(status)
    }
}

extension Serve {
    /// The largest --max-workers: a bound on the processes, queues and scoreboard one daemon makes.
    static let maxWorkersLimit = 4096

    /// Permission bits written in octal (`0666`, `660`).
    static func mode(_ text: String) -> mode_t? {
        guard let bits = mode_t(text, radix: 8), bits <= 0o777 else { return nil }
        return bits
    }
}

/// `poold worker ...`: how the daemon spawns its workers (an entry point, not a command for people,
/// so it is kept out of the daemon's parser, its help and its manual).
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "poold worker")

    @Option var slot: Int
    @Option var prefix: String
    @Option var daemonPid: Int32
    @Option var logLevel: String = "info"
    @Option var logTarget: LogTarget = .stderr
    @Option var instance: String?
    /// The daemon's doorbell (an eventfd), rung after each event sent.
    @Option var doorbellFd: Int32?
    @Flag var crashAtStart = false
    @Option var fault: [String] = []

    func run() throws {
        if crashAtStart { kill(getpid(), SIGKILL) }
        let faults = (try? FaultInjection(specifications: fault)) ?? FaultInjection()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let logger = logTarget.logger(label: "worker-\(slot)", level: level, isWorker: true, slot: slot, instance: instance)
        let runtime = WorkerRuntime(slot: slot, names: IPCNames(prefix: prefix), daemonPID: daemonPid,
                                    doorbellDescriptor: doorbellFd, faults: faults, logger: logger)
        throw ExitCode(runtime.run())
    }
}

if CommandLine.arguments.dropFirst().first == "worker" {
    Worker.main(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
let commandLine: ConfigurationArguments
do {
    commandLine = try ConfigurationArguments.merge(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandleOutput.standardError("poold: \(error)")
    exit(1)
}
do {
    var command = try Serve.parseAsRoot(commandLine.arguments)
    try command.run()
} catch {
    let code = Serve.exitCode(for: error)
    if code == .validationFailure {
        FileHandleOutput.standardError(Serve.fullMessage(for: error))
        if let provenance = commandLine.provenance { FileHandleOutput.standardError("note: \(provenance)") }
        exit(2)
    }
    Serve.exit(withError: error)
}
