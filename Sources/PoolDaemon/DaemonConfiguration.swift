import Logging

/// Everything the daemon is started with: from the command line now, from a configuration file and
/// systemd's environment later.
public struct DaemonConfiguration: Sendable {
    public var socketPath: String
    public var workers: Int
    /// The largest pool `Resize` accepts; also the scoreboard's capacity.
    public var maxWorkers: Int
    public var names: IPCNames
    public var logLevel: Logger.Level
    /// Resolved (never `auto`): workers are told where to log.
    public var logTarget: LogTarget
    /// The pool's identity in the journal (PoolInstance), given to the workers too.
    public var instance: String?
    /// The configuration file re-read on SIGHUP, if any.
    public var configurationFile: String?
    /// The file's values in effect (as read at start, then as reloads applied them), by key: what
    /// a reload compares the file with.
    public var configurationFileValues: [String: String] = [:]
    /// The options given on the command line, which the file cannot override.
    public var commandLineKeys: Set<String> = []
    /// The environment workers are spawned with (the daemon's, less what is meant for it alone).
    public var workerEnvironment: [String]

    /// First respawn delay after a crash; doubled per further crash within `failureWindow`.
    public var backoffBase: Duration = .milliseconds(100)
    public var backoffMax: Duration = .seconds(30)
    /// Crashes within `failureWindow` after which a slot is left `failed`.
    public var failureLimit: Int = 5
    public var failureWindow: Duration = .seconds(60)
    /// How long a new worker may take to say ready before it is killed.
    public var startTimeout: Duration = .seconds(10)
    /// How long a worker asked to exit may take before it is killed.
    public var stopTimeout: Duration = .seconds(5)
    /// How long a worker that is up may go without a heartbeat before it is taken for hung and killed.
    public var heartbeatTimeout: Duration = .seconds(10)
    /// Testing only: deaths on demand (`--fault`).
    public var faults = FaultInjection()
    /// How long a cancelled job's workers may take to stop before they are killed.
    public var cancelGrace: Duration = .seconds(5)
    /// On SIGTERM or Shutdown: how long running jobs may go on before they are cancelled (0: at
    /// once). systemd/poold.service's TimeoutStopSec= counts on it.
    public var drainTimeout: Duration = .seconds(30)
    /// Finished jobs kept for ListJobs and GetJob, in memory and in the job history.
    public var historyLimit: Int = 1000
    /// Where the job history (`history.sqlite`) lives; nil keeps none on disk.
    public var stateDirectory: String?
    public var maxQueuedJobs: Int = 1000
    /// How many jobs a second have their lines logged (JobLogLimiter); 0: all. 100 jobs, at a
    /// few lines each, stay within journald's default rate limit (10,000 records in 30 s).
    public var jobLogRate: Int = 100
    /// How many later jobs may start before a queued one that is waiting for workers; after that,
    /// the workers that free up are kept for it (JobScheduler.dispatch).
    public var overtakeLimit: Int = 8
    /// How often a running job's followers (Run and GetJob with `more`), and Status followers while
    /// jobs run, are sent its progress: a few times a second, for poolctl's live line.
    public var progressInterval: Duration = .milliseconds(250)
    /// Who may use the control socket, how much, and for how long (limits, timeouts, access).
    public var control = ControlSocketSettings()

    public init(socketPath: String, workers: Int, maxWorkers: Int, names: IPCNames, logLevel: Logger.Level,
                logTarget: LogTarget, workerEnvironment: [String]) {
        self.logTarget = logTarget
        self.socketPath = socketPath
        self.workers = workers
        self.maxWorkers = maxWorkers
        self.names = names
        self.logLevel = logLevel
        self.workerEnvironment = workerEnvironment
    }
}
