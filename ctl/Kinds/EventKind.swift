import ArgumentParser
import Foundation
import PoolProtocol

enum EventKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { EventCommand.self }

    static func lines(_ result: EventResult) -> [String] {
        ["  event set after \(result.setAfter); timeout waiters wait \(result.timeout) at a time"] + result.waiters.map { waiter in
            var line = "  \(waiter.withTimeout ? "timeout waiter" : "waiter") on slot \(waiter.slot): received event \(waiter.received ? "True" : "False")"
            if waiter.withTimeout { line += ", \(waiter.timeouts) timeouts" }
            if let latency = waiter.wakeLatencyMicros { line += String(format: ", woke %.0fus after the set", latency) }
            return line
        }
    }

    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String] {
        guard let waiting = progress.waiting, let woken = progress.woken else { return [] }
        return ["\(waiting) waiting, \(woken) woken"]
    }
}

struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "The notebook's Event: waiters block until the daemon sets it; timeout waiters wait with a timeout, in a loop.",
        discussion: """
            Examples:
              poolctl run event
              poolctl run event --waiters 0 --timeout-waiters 1 --wait-timeout 200ms --set-after 1s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Waiters without a timeout (default 1).") var waiters: Int?
    @Option(parsing: .unconditional, help: "Waiters with a timeout (default 1).") var timeoutWaiters: Int?
    @Option(help: "The timeout waiters' timeout per wait (default 2s); --timeout is the whole job's.") var waitTimeout: String?
    @Option(help: "When the daemon sets the event (default 500ms).") var setAfter: String?

    func validate() throws {
        try OptionChecks.atLeast(0, waiters, "--waiters")
        try OptionChecks.atLeast(0, timeoutWaiters, "--timeout-waiters")
        try OptionChecks.duration(waitTimeout, "--wait-timeout")
        try OptionChecks.duration(setAfter, "--set-after")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("waiters", waiters)
        parameters.set("timeoutWaiters", timeoutWaiters)
        parameters.set("timeout", waitTimeout)
        parameters.set("setAfter", setAfter)
        try JobRunner(global: global, options: options, optionNames: ["timeout": "--wait-timeout"]).run(kind: EventResult.kind, parameters: parameters.object)
    }
}
