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
    let message = Poolctl.fullMessage(for: error)
    // With --json every failure is an object on stdout, a usage error too.
    if CommandLine.arguments.contains("--json") {
        Output.json(UsageErrorJSON(parameters: .init(reason: message)))
    }
    Output.error(message)
    Foundation.exit(Outcome.usage.rawValue)
}
