/// The `io.poold.Pool` varlink interface: its name, its method names and the description text that
/// `org.varlink.service.GetInterfaceDescription` returns (and that generic clients parse).
public enum PoolInterface {
    public static let name = "io.poold.Pool"

    public enum Method: String, CaseIterable, Sendable {
        case status = "Status"
        case run = "Run"
        case listJobs = "ListJobs"
        case getJob = "GetJob"
        case cancel = "Cancel"
        case resize = "Resize"
        case restartWorkers = "RestartWorkers"
        case shutdown = "Shutdown"
        case reload = "Reload"

        public var qualifiedName: String { PoolInterface.name + "." + rawValue }
    }

    public static let description = """
        # poold runs the jobs of a notebook on concurrency across a supervised pool of worker
        # processes. Workers and daemon talk over POSIX message queues and shared memory; this
        # interface is the control plane.
        interface io.poold.Pool

        # One slot of the pool and the process in it.
        type Worker (
          slot: int,
          # 0 while no process runs in the slot (backoff, failed).
          pid: int,
          # starting, ready, busy, stopping, backoff or failed.
          state: string,
          job: ?int,
          restarts: int,
          lastExit: ?string
        )

        # A job's work done so far, and what its kind shows live.
        type Progress (
          done: int,
          total: int,
          # prodcons: messages in the queue now (at most the `capacity` parameter).
          queueDepth: ?int,
          # event: participants blocked on the event now, and those it has woken.
          waiting: ?int,
          woken: ?int,
          # append with shared memory: the string so far (its last 1000 characters when longer).
          text: ?string
        )

        # A shutdown in progress: running jobs may finish until the deadline, then are cancelled.
        type Drain (
          # What asked for it: SIGTERM, SIGINT or Shutdown.
          reason: string,
          # The drain timeout (poold --drain-timeout).
          timeoutSeconds: float,
          # Until running jobs are cancelled; 0 once they are being cancelled.
          secondsLeft: float
        )

        # A job and, once finished, its result (its fields depend on the kind).
        type Job (
          id: int,
          kind: string,
          # queued, running, succeeded, failed, cancelled or interrupted (was queued or running
          # when the daemon died; seen in the job history after a restart).
          state: string,
          parameters: object,
          slots: []int,
          submittedAt: string,
          startedAt: ?string,
          finishedAt: ?string,
          progress: ?Progress,
          result: ?object,
          error: ?string,
          # The job's own log lines, such as a prodcons trace. A finished job's record keeps the
          # first and last 500 (the journal has them all); ListJobs leaves them out.
          log: ?[]string,
          # While the job runs, `log` holds its latest 1000 lines at most: the number of lines
          # before them.
          logOffset: ?int,
          # While the job is queued: what it waits for, such as "waiting for 2 idle workers; 1
          # idle, 1 busy with job 4".
          waiting: ?string
        )

        # The job history on disk (poold --state-dir).
        type History (
          # The database file.
          path: string,
          # While the history cannot be written (a full disk, the state directory removed):
          # why, and what is done about it. Absent when every record is written.
          problem: ?string,
          # The last problem the history had (a damaged file found at start, the state
          # directory removed and rebuilt, writes that failed for a while), when, and how it
          # was resolved.
          lastIncident: ?string,
          # Job records held in memory, not written yet.
          unwrittenJobs: int
        )

        # The pool and its jobs. With `more`, a reply follows every change.
        method Status() -> (
          pid: int,
          version: string,
          poolSize: int,
          workers: []Worker,
          jobsQueued: int,
          jobsRunning: int,
          jobsFinished: int,
          uptimeSeconds: float,
          # Only while the daemon shuts down.
          drain: ?Drain,
          # Absent when the daemon keeps no job history.
          history: ?History,
          # The pool's records in the journal carry it as POOLD_INSTANCE (journalctl
          # POOLD_INSTANCE=...): the same across restarts on one state directory.
          instance: ?string,
          # The running jobs with their progress, without their logs; absent when none runs. With
          # `more`, a reply also follows every 250 ms while one runs.
          runningJobs: ?[]Job
        )

        # Runs a job of `kind` (counter, prodcons, event, tasks, append or lockcell) and replies when it has finished. With `more`, replies
        # follow as it is queued, starts and progresses (every 250 ms while it runs). With `detach`, replies once it is queued
        # and recorded in the job history (ResourceLimit, naming the disk, when it cannot be).
        method Run(kind: string, parameters: ?object, detach: ?bool, timeout: ?string) -> (job: Job)

        # The most recent jobs first; with `state` or `kind`, only those (the limit counts what matches).
        method ListJobs(limit: ?int, state: ?string, kind: ?string) -> (jobs: []Job)

        # With `more`, replies follow as the job progresses (every 250 ms while it runs), the last
        # when it has finished.
        method GetJob(id: int) -> (job: Job)

        # Stops a queued or running job; its workers return to the pool.
        method Cancel(id: int) -> (job: Job)

        # Grows or shrinks the pool; busy workers finish their job first.
        method Resize(workers: int) -> (poolSize: int, workers: []Worker)

        # Replaces the workers of `slots` (none given: every slot) with new ones, one at a time,
        # each new worker ready before the next is replaced, and brings failed slots back. A busy
        # slot's worker is replaced when its job ends. Replies once the idle and failed slots are
        # done: `restarted` lists them, `afterJob` the busy ones.
        method RestartWorkers(slots: ?[]int) -> (poolSize: int, workers: []Worker, restarted: []int, afterJob: []int)

        # Stops accepting jobs, cancels queued ones, lets running ones finish until the drain
        # deadline (then cancels them), stops the workers, removes every IPC object and exits.
        method Shutdown() -> ()

        # Re-reads the configuration file (poold --config), as SIGHUP does: what changed and took
        # effect (workers, drain-timeout, heartbeat-timeout, max-queued-jobs, job-log-rate), what takes effect at
        # the next start, and what the command line overrides; each as `key = value`.
        method Reload() -> (configurationFile: string, applied: []string, pending: []string, ignored: []string)

        error InvalidParameter (parameter: string, reason: string)
        error NotFound (id: int, reason: string)
        # The job needs more workers than the pool has, or than can run now: `failedSlots` are
        # the failed ones (RestartWorkers brings them back).
        error PoolTooSmall (requested: int, poolSize: int, failedSlots: ?[]int, reason: string)
        error ShuttingDown (reason: string)
        error InvalidRequest (reason: string)
        error ResourceLimit (reason: string)
        # Run, Cancel, Resize and Shutdown are for root and members of the daemon's control group.
        error PermissionDenied (method: string, rule: string, group: string, reason: string)
        # Above the daemon's limit on connections, in total or per user; the connection is closed.
        error TooManyConnections (limit: int, reason: string)
        """

    /// The description of org.varlink.service, which every varlink service implements.
    public static let serviceDescription = """
        # The Varlink Service Interface is provided by every varlink service. It
        # describes the service and the interfaces it implements.
        interface org.varlink.service

        # Get a list of all the interfaces a service provides and information
        # about the implementation.
        method GetInfo() -> (
          vendor: string,
          product: string,
          version: string,
          url: string,
          interfaces: []string
        )

        # Get the description of an interface that is implemented by this service.
        method GetInterfaceDescription(interface: string) -> (description: string)

        # The requested interface was not found.
        error InterfaceNotFound (interface: string)

        # The requested method was not found
        error MethodNotFound (method: string)

        # The interface defines the requested method, but the service does not
        # implement it.
        error MethodNotImplemented (method: string)

        # One of the passed parameters is invalid.
        error InvalidParameter (parameter: string)
        """
}
