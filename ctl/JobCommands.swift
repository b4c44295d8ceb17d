import ArgumentParser
import Foundation
import PoolProtocol

extension JobState: ExpressibleByArgument {}

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent jobs, newest first.",
        discussion: """
            Examples:
              poolctl jobs
              poolctl jobs --state failed --limit 50
              poolctl jobs --kind prodcons
            """)

    @OptionGroup var global: GlobalOptions

    @Option(parsing: .unconditional, help: "How many jobs to list.")
    var limit: Int = 20

    @Option(help: "Only jobs in this state: queued, running, succeeded, failed, cancelled or interrupted.")
    var state: JobState?

    @Option(help: "Only jobs of this kind (counter, prodcons, event, tasks, append).")
    var kind: String?

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let client = try global.connect()
        let request = ListJobsRequest(limit: limit, state: state?.rawValue, kind: kind)
        let reply = try global.call(client, .listJobs, request, returning: ListJobsReply.self)
        if global.json {
            Output.json(reply)
            return
        }
        if reply.jobs.isEmpty {
            let filtered = [state.map { "\($0.rawValue) " }, kind.map { "\($0) " }].compactMap { $0 }.joined()
            Output.line(filtered.isEmpty ? "no jobs yet; run one with `poolctl run counter`" : "no \(filtered)jobs")
            return
        }
        Output.table(["ID", "KIND", "STATE", "SLOTS", "SUBMITTED", "SUMMARY"], reply.jobs.map { job in
            [String(job.id), job.kind, job.state.rawValue, job.slots.map(String.init).joined(separator: ","),
             job.submittedAt, job.summary]
        })
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Show one job with its full result.",
        discussion: """
            Examples:
              poolctl job 7
              poolctl job 7 --wait
              poolctl job 7 --follow
              poolctl --json job 7
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The job's id.")
    var id: Int

    @Flag(help: "Wait until the job has finished; exit 1 if it failed, was cancelled or was interrupted.")
    var wait = false

    @Flag(help: "Follow the job to its end as `run` does: its log lines and, on a terminal, its live progress; exit as --wait does. Ctrl-C stops following (the job goes on).")
    var follow = false

    @Flag(name: .shortAndLong, help: "With --follow: no live progress bar on the terminal.")
    var quiet = false

    func run() throws {
        let client = try global.connect()
        guard wait || follow else {
            let reply = try global.call(client, .getJob, JobIDRequest(id: id), returning: JobReply.self)
            JobPrinter(json: global.json, showLog: true).print(reply.job)
            return
        }
        let printer = follow && !global.json ? JobStreamPrinter(live: quiet ? nil : LiveJobProgress()) : nil
        if follow, let interrupts = Interrupts.catchSIGINT() {
            client.interruption = (interrupts, { [id] in
                printer?.live?.clear()
                Output.info("poolctl: stopped following job \(id); it goes on (`poolctl job \(id) --follow` to follow it again)")
                // At once: _exit runs no exit handlers (the output is written already).
                _exit(130)
            })
        }
        try JobFollower(global: global, printer: printer).follow(client, .getJob, JobIDRequest(id: id))
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a queued or running job.",
        discussion: """
            Examples:
              poolctl cancel 7
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The job's id.")
    var id: Int

    func run() throws {
        let client = try global.connect()
        let reply = try global.call(client, .cancel, JobIDRequest(id: id), returning: JobReply.self)
        if global.json { Output.json(reply.job) } else {
            let note = reply.job.state.isFinished ? "" : " (its workers stop at their next check)"
            Output.line("job \(reply.job.id): \(reply.job.state.rawValue)\(note)")
        }
    }
}

struct Pool: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the pool.",
        discussion: """
            Examples:
              poolctl pool resize 8
              poolctl pool restart 1
            """,
        subcommands: [Resize.self, Restart.self])

    struct Resize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grow or shrink the pool to N workers (busy workers finish their job first).",
            discussion: """
                Examples:
                  poolctl pool resize 8
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The new number of workers.")
        var workers: Int

        func run() throws {
            let client = try global.connect()
            let reply = try global.call(client, .resize, ResizeRequest(workers: workers), returning: ResizeReply.self)
            if global.json { Output.json(reply) } else { Output.line("pool resized to \(reply.poolSize) workers") }
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the workers of the given slots (default: all) with new ones, and bring failed slots back.",
            discussion: """
                One slot at a time, each new worker ready before the next is replaced, so the pool keeps serving. A busy \
                slot's worker is replaced when its job ends. Exits 1 if a slot failed again (see `poolctl status`).

                Examples:
                  poolctl pool restart
                  poolctl pool restart 1 3
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Slots to restart (default: every slot).")
        var slots: [Int] = []

        func run() throws {
            let client = try global.connect()
            let request = RestartWorkersRequest(slots: slots.isEmpty ? nil : slots)
            let reply = try global.call(client, .restartWorkers, request, returning: RestartWorkersReply.self)
            let failed = reply.workers.filter { reply.restarted.contains($0.slot) && $0.state == .failed }
            if global.json {
                Output.json(reply)
            } else {
                if !reply.restarted.isEmpty { Output.line("new workers in slots \(reply.restarted.map(String.init).joined(separator: ", "))") }
                for slot in reply.afterJob {
                    let job = reply.workers.first { $0.slot == slot }?.job.map { "job \($0)" } ?? "its job"
                    Output.line("slot \(slot) is busy: its worker is replaced when \(job) ends")
                }
                for worker in failed {
                    Output.error("slot \(worker.slot) failed again: \(worker.lastExit ?? "its worker keeps crashing"); see `poolctl logs --worker \(worker.slot)`")
                }
            }
            if !failed.isEmpty { throw Outcome.jobFailed.exitCode }
        }
    }
}

struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the daemon: running jobs drain until its drain timeout, then it stops its workers and exits.",
        discussion: """
            Examples:
              poolctl shutdown
              poolctl shutdown --wait
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Wait until the daemon has exited, printing the drain as it goes.")
    var wait = false

    func run() throws {
        let client = try global.connect()
        _ = try global.call(client, .shutdown, returning: NoParameters.self)
        if !global.json { Output.line("poold is shutting down") }
        guard wait else {
            if global.json { Output.json(NoParameters()) }
            return
        }
        // The daemon answers Status with `more` until it exits; the connection closing is the end.
        var last: String?
        do {
            try client.stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
                let status = try VarlinkClient.decode(reply, as: StatusReply.self)
                let line = status.drain.map { drain in
                    status.jobsRunning > 0 && drain.secondsLeft > 0
                        ? "draining \(status.jobsRunning) job(s): cancelled in \(Int(drain.secondsLeft.rounded(.up)))s"
                        : "waiting for \(status.workers.filter { $0.pid != 0 }.count) worker(s) to exit"
                }
                if let line, line != last, !global.json { Output.line("  " + line) }
                last = line
                return true
            }
        } catch VarlinkClientError.connectionLost {
            // Closed by the daemon as it exited.
        } catch {
            throw global.report(error)
        }
        if global.json { Output.json(NoParameters()) } else { Output.line("poold has stopped") }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read the daemon's configuration file (as SIGHUP or `systemctl reload poold` do) and say what changed.",
        discussion: """
            workers, drain-timeout, heartbeat-timeout and max-queued-jobs take effect at once; the other keys at the \
            next start; a key also given on the daemon's command line stays as the command line says.

            Example:
              poolctl reload
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let client = try global.connect()
        let reply = try global.call(client, .reload, returning: ReloadReply.self)
        if global.json { return Output.json(reply) }
        let changed = !(reply.applied + reply.pending + reply.ignored).isEmpty
        Output.line("reloaded \(reply.configurationFile)" + (changed ? "" : ": nothing changed"))
        if !reply.applied.isEmpty { Output.line("  applied now: " + reply.applied.joined(separator: ", ")) }
        if !reply.pending.isEmpty {
            Output.line("  at the next start: " + reply.pending.joined(separator: ", ") + " (`sudo systemctl restart poold`)")
        }
        if !reply.ignored.isEmpty {
            Output.line("  unchanged, set on the daemon's command line: " + reply.ignored.joined(separator: ", "))
        }
    }
}
