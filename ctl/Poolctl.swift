import ArgumentParser
import PoolProtocol

struct Poolctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poolctl",
        abstract: "Control poold: run the notebook's jobs on its worker pool, watch them, manage the pool.",
        discussion: """
            Exit status: 0 done, 1 the job failed, was cancelled or interrupted, 2 usage error (what poolctl can check \
            itself), 3 daemon unreachable, 4 refused by the daemon (what depends on the pool or the machine), 130 left \
            with Ctrl-C.

            Examples:
              poolctl status
              poolctl run counter --mode unsafe
              poolctl run prodcons --trace
              poolctl jobs
              poolctl logs 3
            """,
        version: PooldVersion.string,
        subcommands: [Status.self, Run.self, Jobs.self, JobCommand.self, Cancel.self, Pool.self, Reload.self, Shutdown.self, Logs.self]
    )

    @OptionGroup var global: GlobalOptions
}
