import ArgumentParser
import Foundation
import PoolProtocol

enum EventPrinting: JobKindPrinting {
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
