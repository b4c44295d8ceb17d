import ArgumentParser
import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

// poolctl exits with 0 when done, 1 when the job failed or was cancelled, 2 on a usage error, 3
// when the daemon cannot be reached and 4 when the daemon refused the request.
do {
    var command = try Poolctl.parseAsRoot()
    try command.run()
} catch let exit as ExitCode {
    Foundation.exit(exit.rawValue)
} catch {
    let code = Poolctl.exitCode(for: error)
    if code == .success {
        print(Poolctl.fullMessage(for: error))
        Foundation.exit(0)
    }
    var message = Poolctl.fullMessage(for: error)
    // `poolctl run frobnicate`: the parser's "Unexpected argument" does not say what the kinds are.
    let arguments = Array(CommandLine.arguments.dropFirst())
    if let run = arguments.firstIndex(of: "run"), let kind = arguments.dropFirst(run + 1).first, !kind.hasPrefix("-") {
        let kinds = Run.configuration.subcommands.compactMap { $0.configuration.commandName }
        if !kinds.contains(kind) {
            message = "unknown job kind '\(kind)'; the kinds are \(kinds.joined(separator: ", ")) (`poolctl run KIND --help` shows each one's options)"
        }
    }
    // With --json every failure is an object on stdout, a usage error too.
    if CommandLine.arguments.contains("--json") {
        Output.json(UsageErrorJSON(parameters: .init(reason: message)))
    }
    Output.error(message)
    Foundation.exit(Outcome.usage.rawValue)
}
