import ArgumentParser
import Foundation
import PoolProtocol

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one of the notebook's jobs and wait for its result.",
        discussion: """
            On a terminal the job's progress shows live; Ctrl-C cancels the job (twice: leave at once).

            Examples:
              poolctl run counter --mode unsafe
              poolctl run prodcons --trace --detach
              poolctl run tasks --count 10 --timeout 30s
            """,
        subcommands: PoolctlJobKinds.all.map { $0.command }
    )
}

/// Options every `run` subcommand takes.
struct RunOptions: ParsableArguments {
    @Flag(help: "Return as soon as the job is queued, printing its id.")
    var detach = false

    @Option(help: "Fail the job if it runs longer than this once started (e.g. 30s, 500ms).")
    var timeout: String?

    @Flag(name: .shortAndLong, help: "No live progress bar on the terminal.")
    var quiet = false

    func validate() throws {
        if let timeout, (DurationText.nanoseconds(timeout) ?? 0) <= 0 {
            throw ValidationError("--timeout must be a positive duration such as 30s or 500ms, not '\(timeout)'")
        }
    }
}

/// Collects the options a user gave into a job's parameters object; unset ones are left to the
/// daemon's defaults (the notebook's cells).
struct ParameterBuilder {
    private(set) var fields: [String: JSONValue] = [:]

    mutating func set(_ name: String, _ value: Int?) { if let value { fields[name] = .number(Double(value)) } }
    mutating func set(_ name: String, _ value: String?) { if let value { fields[name] = .string(value) } }
    mutating func set(_ name: String, _ value: Bool?) { if let value { fields[name] = .bool(value) } }

    var object: JSONValue { .object(fields) }
}

/// Submits a job and follows it to its end. Ctrl-C meanwhile cancels it (see `CancelOnInterrupt`).
struct JobRunner {
    let global: GlobalOptions
    let options: RunOptions
    /// The command's option for a job parameter not named as its option (see `GlobalOptions.report`).
    var optionNames: [String: String] = [:]

    func run(kind: String, parameters: JSONValue) throws {
        let client = try global.connect()
        let request = RunRequest(kind: kind, parameters: parameters, detach: options.detach ? true : nil,
                                 timeout: options.timeout)
        if options.detach {
            let reply = try global.call(client, .run, request, returning: JobReply.self, options: optionNames)
            if global.json { Output.json(reply.job) } else { Output.line("job \(reply.job.id) \(reply.job.state.rawValue)") }
            return
        }
        let printer = global.json ? nil : JobStreamPrinter(live: options.quiet ? nil : LiveJobProgress())
        let canceller = Interrupts.catchSIGINT().map { CancelOnInterrupt(global: global, printer: printer, interrupts: $0) }
        if let canceller { client.interruption = (canceller.interrupts, canceller.interrupted) }
        try JobFollower(global: global, printer: printer, optionNames: optionNames).follow(client, .run, request) { job in canceller?.jobID = job.id }
    }
}

/// Ctrl-C in a foreground `run`. The first cancels the job, on a second connection (the first
/// waits for the job's replies), and the wait goes on for the job's final record, which says what
/// became of it; a second leaves at once.
final class CancelOnInterrupt {
    let global: GlobalOptions
    let printer: JobStreamPrinter?
    /// The read end of the interrupt pipe.
    let interrupts: Int32
    /// Known from the daemon's first reply; a Ctrl-C before it is acted on once it is known.
    var jobID: Int? {
        didSet { if cancelPending, jobID != nil { cancel() } }
    }
    private var count = 0
    private var cancelPending = false

    init(global: GlobalOptions, printer: JobStreamPrinter?, interrupts: Int32) {
        self.global = global
        self.printer = printer
        self.interrupts = interrupts
    }

    func interrupted() {
        count += 1
        printer?.live?.clear()
        guard count == 1 else {
            let what = jobID.map { "; job \($0) is being cancelled (`poolctl job \($0)` shows how it ended)" } ?? ""
            Output.info("poolctl: left without waiting\(what)")
            // At once: _exit runs no exit handlers (the output is written already).
            _exit(130)
        }
        if jobID == nil { cancelPending = true } else { cancel() }
    }

    private func cancel() {
        cancelPending = false
        guard let id = jobID else { return }
        Output.info("cancelling job \(id) (Ctrl-C again to leave without waiting)")
        do {
            let client = try VarlinkClient(socketPath: global.socketPath)
            client.interruption = (interrupts, interrupted)
            _ = try client.call(PoolInterface.Method.cancel.qualifiedName, JobIDRequest(id: id), returning: JobReply.self)
        } catch {
            Output.error("could not cancel job \(id): \(error); still waiting for it (Ctrl-C again to leave, `poolctl cancel \(id)` to retry)")
        }
    }
}

/// Follows a job through streamed replies (Run or GetJob with `more`) to its end, prints it and
/// exits 1 unless it succeeded.
struct JobFollower {
    let global: GlobalOptions
    /// Shows the job as it goes (nil: only its end, as with --json).
    var printer: JobStreamPrinter?
    /// For refusals: the command's options not named as their parameters.
    var optionNames: [String: String] = [:]

    func follow(_ client: VarlinkClient, _ method: PoolInterface.Method, _ parameters: some Encodable & Sendable,
                onUpdate: (JobRecord) -> Void = { _ in }) throws {
        var final: JobRecord?
        do {
            try client.stream(method.qualifiedName, parameters) { reply in
                let job = try VarlinkClient.decode(reply, as: JobReply.self).job
                onUpdate(job)
                printer?.show(job)
                if job.state.isFinished { final = job }
                return true
            }
        } catch {
            printer?.live?.clear()
            throw global.report(error, options: optionNames)
        }
        guard let job = final else {
            Output.error("the daemon ended the call before the job finished")
            throw Outcome.unreachable.exitCode
        }
        JobPrinter(json: global.json).print(job)
        if job.state != .succeeded { throw Outcome.jobFailed.exitCode }
    }
}
