import ArgumentParser
import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the pool's workers and job counts.",
        discussion: """
            Examples:
              poolctl status
              poolctl status --follow
              poolctl --json status
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Keep showing the status, until interrupted: on a terminal redrawn in place with the running jobs' progress, elsewhere one record per change.")
    var follow = false

    func run() throws {
        let client = try global.connect()
        guard follow else {
            let status = try global.call(client, .status, returning: StatusReply.self)
            if global.json { Output.json(status) } else { StatusView().lines(status, width: nil).forEach(Output.line) }
            return
        }
        let screen = global.json ? nil : Terminal(descriptor: STDOUT_FILENO)
        let view = StatusView()
        var lastChange: StatusReply?
        var firstFrame = true
        do {
            try client.stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
                let status = try VarlinkClient.decode(reply, as: StatusReply.self)
                view.noteProgress(status)
                if let screen {
                    view.redraw(status, on: screen, clearing: firstFrame)
                    firstFrame = false
                    return true
                }
                // Off a terminal, one record per change: the daemon also pushes the status while
                // jobs run, for their progress alone.
                let change = Self.withoutProgress(status)
                guard change != lastChange else { return true }
                lastChange = change
                if global.json { Output.json(status, pretty: false) } else { (view.lines(status, width: nil) + [""]).forEach(Output.line) }
                return true
            }
        } catch {
            throw global.report(error)
        }
    }

    /// The status with what changes on every push (uptime, progress, a drain's time left) left out.
    private static func withoutProgress(_ status: StatusReply) -> StatusReply {
        var status = status
        status.uptimeSeconds = 0
        if let left = status.drain?.secondsLeft { status.drain?.secondsLeft = left > 0 ? 1 : 0 }
        status.runningJobs = status.runningJobs?.map { job in
            var job = job
            job.progress = nil
            return job
        }
        return status
    }
}

/// The status for people, with each running job's progress samples (for its rate).
final class StatusView {
    private var meters: [Int: ProgressMeter] = [:]

    func noteProgress(_ status: StatusReply) {
        let running = status.runningJobs ?? []
        meters = meters.filter { id, _ in running.contains { $0.id == id } }
        for job in running {
            if let progress = job.progress { meters[job.id, default: ProgressMeter()].note(progress) }
        }
    }

    /// The status as `top` or `watch` show theirs: from the top left, each line erased to its end,
    /// then the rest of the screen. Lines are cut to the window, so that nothing wraps or scrolls.
    func redraw(_ status: StatusReply, on screen: Terminal, clearing: Bool) {
        let (columns, rows) = screen.size
        let shown = lines(status, width: columns - 1, terminal: screen).prefix(max(1, rows - 1))
        var frame = clearing ? Terminal.home + Terminal.eraseBelow : Terminal.home
        for line in shown { frame += line + Terminal.eraseLine + "\n" }
        screen.write(frame + Terminal.eraseBelow)
    }

    /// The status as lines: the pool, its workers, then the running jobs with their progress.
    /// With a `width`, every line fits it.
    func lines(_ status: StatusReply, width: Int?, terminal: Terminal? = nil) -> [String] {
        let busy = status.workers.filter { $0.state == .busy }.count
        let ready = status.workers.filter { $0.state == .ready }.count
        var lines = ["poold \(status.version), pid \(status.pid), up \(Output.duration(status.uptimeSeconds))"]
        if let drain = status.drain {
            lines.append(drain.secondsLeft > 0
                ? "shutting down (\(drain.reason)): running jobs may finish within \(Output.duration(drain.secondsLeft)), then are cancelled"
                : "shutting down (\(drain.reason)): cancelling what runs, stopping the workers")
        }
        lines.append("pool: \(status.poolSize) workers (\(ready) ready, \(busy) busy); jobs: \(status.jobsRunning) running, \(status.jobsQueued) queued, \(status.jobsFinished) finished")
        if let problem = status.history?.problem { lines.append("job history failing: \(problem)") }
        if let incident = status.history?.lastIncident { lines.append("job history, last incident: \(incident)") }
        lines += Output.tableLines(["SLOT", "PID", "STATE", "JOB", "RESTARTS", "LAST EXIT"], status.workers.map { worker in
            [String(worker.slot), worker.pid == 0 ? "-" : String(worker.pid), worker.state.rawValue,
             worker.job.map(String.init) ?? "-", String(worker.restarts), worker.lastExit ?? "-"]
        })
        let failed = status.workers.filter { $0.state == .failed }.map { String($0.slot) }
        if !failed.isEmpty {
            lines.append("failed slots are not respawned; bring them back with `poolctl pool restart \(failed.joined(separator: " "))`")
        }
        if let width { lines = lines.map { String($0.prefix(width)) } }
        let running = status.runningJobs ?? []
        guard !running.isEmpty else { return lines }
        let heads = Output.tableLines(["JOB", "KIND", "SLOTS"], running.map { job in
            [String(job.id), job.kind, job.slots.map(String.init).joined(separator: ",")]
        })
        let headWidth = heads.map(\.count).max() ?? 0
        lines.append("")
        lines.append(String((heads[0].padding(toLength: headWidth, withPad: " ", startingAt: 0) + "  PROGRESS").prefix(width ?? .max)))
        for (job, head) in zip(running, heads.dropFirst()) {
            let start = head.padding(toLength: headWidth, withPad: " ", startingAt: 0) + "  "
            let room = (width ?? 80) - start.count
            guard room >= 10 else {
                lines.append(String(head.prefix(width ?? .max)))
                continue
            }
            let meter = meters[job.id] ?? ProgressMeter()
            lines.append(start + meter.line(for: job, width: room, terminal: terminal))
        }
        return lines
    }
}
