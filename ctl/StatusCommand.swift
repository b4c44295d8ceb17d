import ArgumentParser
import Foundation
import PoolProtocol

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the pool's workers and job counts.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Keep printing the status on every change, until interrupted.")
    var follow = false

    func run() throws {
        let client = try global.connect()
        guard follow else {
            let status = try global.call(client, .status, returning: StatusReply.self)
            print(status)
            return
        }
        do {
            try client.stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
                print(try VarlinkClient.decode(reply, as: StatusReply.self))
                return true
            }
        } catch {
            throw global.report(error)
        }
    }

    private func print(_ status: StatusReply) {
        if global.json {
            Output.json(status, pretty: !follow)
            return
        }
        let busy = status.workers.filter { $0.state == .busy }.count
        let ready = status.workers.filter { $0.state == .ready }.count
        Output.line("poold \(status.version), pid \(status.pid), up \(Output.duration(status.uptimeSeconds))")
        if let drain = status.drain {
            Output.line(drain.secondsLeft > 0
                ? "shutting down (\(drain.reason)): running jobs may finish within \(Output.duration(drain.secondsLeft)), then are cancelled"
                : "shutting down (\(drain.reason)): cancelling what runs, stopping the workers")
        }
        Output.line("pool: \(status.poolSize) workers (\(ready) ready, \(busy) busy); jobs: \(status.jobsRunning) running, \(status.jobsQueued) queued, \(status.jobsFinished) finished")
        if let problem = status.history?.problem { Output.line("job history failing: \(problem)") }
        if let incident = status.history?.lastIncident { Output.line("job history, last incident: \(incident)") }
        Output.table(["SLOT", "PID", "STATE", "JOB", "RESTARTS", "LAST EXIT"], status.workers.map { worker in
            [String(worker.slot), worker.pid == 0 ? "-" : String(worker.pid), worker.state.rawValue,
             worker.job.map(String.init) ?? "-", String(worker.restarts), worker.lastExit ?? "-"]
        })
        let failed = status.workers.filter { $0.state == .failed }.map { String($0.slot) }
        if !failed.isEmpty {
            Output.line("failed slots are not respawned; bring them back with `poolctl pool restart \(failed.joined(separator: " "))`")
        }
        if follow { Output.line("") }
    }
}
