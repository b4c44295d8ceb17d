import ArgumentParser
import Foundation
import PoolProtocol

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one of the notebook's jobs and wait for its result.",
        subcommands: [CounterCommand.self, ProdConsCommand.self, EventCommand.self, TasksCommand.self, AppendCommand.self,
                      LockCellCommand.self]
    )
}

/// Options every `run` subcommand takes.
struct RunOptions: ParsableArguments {
    @Flag(help: "Return as soon as the job is queued, printing its id.")
    var detach = false

    @Option(help: "Fail the job if it runs longer than this once started (e.g. 30s, 500ms).")
    var timeout: String?

    func validate() throws {
        if let timeout, (DurationText.nanoseconds(timeout) ?? 0) <= 0 {
            throw ValidationError("--timeout must be a positive duration such as 30s or 500ms, not '\(timeout)'")
        }
    }
}

struct CounterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counter",
        abstract: "The notebook's counter race: workers update one shared counter.",
        discussion: """
            unsafe: a separate load and store per update, so concurrent updates get lost.
            locked: each update under a process-shared robust mutex (the notebook's Lock).
            atomic: one atomic fetch-add per update.
            With --split (the default) half the workers add 1 and half subtract 1, the last one once more,
            so a correct run ends at start - 1.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions

    @Option(help: "unsafe, locked or atomic (default: locked).")
    var mode: CounterMode?

    @Option(help: "Worker processes to run on (default: 2).")
    var workers: Int?

    @Option(help: "Updates per worker (default: 1000000).")
    var iterations: Int?

    @Option(help: "The counter's start value (default: 10).")
    var start: Int?

    @Flag(inversion: .prefixedNo, help: "Half the workers subtract (default: on).")
    var split: Bool?

    func run() throws {
        var parameters: [String: JSONValue] = [:]
        if let mode { parameters["mode"] = .string(mode.rawValue) }
        if let workers { parameters["workers"] = .number(Double(workers)) }
        if let iterations { parameters["iterations"] = .number(Double(iterations)) }
        if let start { parameters["start"] = .number(Double(start)) }
        if let split { parameters["split"] = .bool(split) }
        try JobRunner(global: global, options: options).run(kind: "counter", parameters: .object(parameters))
    }
}

extension CounterMode: ExpressibleByArgument {}

/// Submits a job and follows it to its end.
struct JobRunner {
    let global: GlobalOptions
    let options: RunOptions

    func run(kind: String, parameters: JSONValue) throws {
        let client = try global.connect()
        let request = RunRequest(kind: kind, parameters: parameters, detach: options.detach ? true : nil,
                                 timeout: options.timeout)
        if options.detach {
            let reply = try global.call(client, .run, request, returning: JobReply.self)
            if global.json { Output.json(reply.job) } else { Output.line("job \(reply.job.id) \(reply.job.state.rawValue)") }
            return
        }
        var lastState: JobState?
        var linesShown = 0
        try JobFollower(global: global).follow(client, .run, request) { job in
            guard !global.json else { return }
            if job.state != lastState, !job.state.isFinished {
                let slots = job.slots.isEmpty ? "" : " on slots \(job.slots.map(String.init).joined(separator: ", "))"
                Output.info("job \(job.id) \(job.state.rawValue)\(slots)")
            }
            lastState = job.state
            // The job's log (a trace) as it grows: a running job's record has its latest lines,
            // the first of them `logOffset` lines in; the final record has it whole.
            let lines = job.log ?? [], offset = job.logOffset ?? 0
            if offset > linesShown {
                Output.line("... \(offset - linesShown) lines went by faster than they were shown (poolctl logs \(job.id) has them)")
                linesShown = offset
            }
            for line in lines.dropFirst(linesShown - offset) { Output.line(line) }
            linesShown = max(linesShown, offset + lines.count)
        }
    }
}

/// Follows a job through streamed replies (Run or GetJob with `more`) to its end, prints it and
/// exits 1 unless it succeeded.
struct JobFollower {
    let global: GlobalOptions

    func follow(_ client: VarlinkClient, _ method: PoolInterface.Method, _ parameters: some Encodable & Sendable,
                onUpdate: (JobRecord) -> Void = { _ in }) throws {
        var final: JobRecord?
        do {
            try client.stream(method.qualifiedName, parameters) { reply in
                let job = try VarlinkClient.decode(reply, as: JobReply.self).job
                onUpdate(job)
                if job.state.isFinished { final = job }
                return true
            }
        } catch {
            throw global.report(error)
        }
        guard let job = final else {
            Output.error("the daemon ended the call before the job finished")
            throw Outcome.unreachable.exitCode
        }
        JobPrinter(json: global.json).print(job)
        if job.state != .succeeded { throw Outcome.jobFailed.exitCode }
    }
}
