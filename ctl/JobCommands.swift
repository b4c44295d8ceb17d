import ArgumentParser
import Foundation
import PoolProtocol

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recent jobs, newest first.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "How many jobs to list.")
    var limit: Int = 20

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let client = try global.connect()
        let reply = try global.call(client, .listJobs, ListJobsRequest(limit: limit), returning: ListJobsReply.self)
        if global.json {
            Output.json(reply)
            return
        }
        if reply.jobs.isEmpty {
            Output.line("no jobs yet; run one with `poolctl run counter`")
            return
        }
        Output.table(["ID", "KIND", "STATE", "SLOTS", "SUBMITTED", "SUMMARY"], reply.jobs.map { job in
            [String(job.id), job.kind, job.state.rawValue, job.slots.map(String.init).joined(separator: ","),
             job.submittedAt, JobPrinter.summary(job)]
        })
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job with its full result.")

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
    static let configuration = CommandConfiguration(abstract: "Cancel a queued or running job.")

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
    static let configuration = CommandConfiguration(abstract: "Manage the pool.", subcommands: [Resize.self])

    struct Resize: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grow or shrink the pool to N workers.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The new number of workers.")
        var workers: Int

        func run() throws {
            let client = try global.connect()
            let reply = try global.call(client, .resize, ResizeRequest(workers: workers), returning: ResizeReply.self)
            if global.json { Output.json(reply) } else { Output.line("pool resized to \(reply.poolSize) workers") }
        }
    }
}

struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the daemon: cancel jobs, stop workers, exit.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let client = try global.connect()
        _ = try global.call(client, .shutdown, returning: NoParameters.self)
        if global.json { Output.json(NoParameters()) } else { Output.line("poold is shutting down") }
    }
}
