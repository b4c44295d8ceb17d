import ArgumentParser
import Foundation
import PoolProtocol

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The daemon's socket (default: $POOLD_SOCKET, else /run/poold.sock for root, $XDG_RUNTIME_DIR/poold.sock otherwise).")
    var socket: String?

    @Flag(help: "Print JSON on stdout and nothing else.")
    var json = false

    var socketPath: String { socket ?? DefaultSocket.path(environment: ProcessInfo.processInfo.environment) }

    /// Connects, or exits with status 3 and a message naming the socket.
    func connect() throws -> VarlinkClient {
        do {
            return try VarlinkClient(socketPath: socketPath)
        } catch {
            Output.error("\(error)\n  is poold running? Start it with `poold --socket \(socketPath)`, or point --socket or $POOLD_SOCKET at its socket.")
            throw Outcome.unreachable.exitCode
        }
    }

    /// Makes a call and decodes its reply, turning an error reply into exit status 4 and a lost
    /// connection into status 3.
    func call<Reply: Decodable>(_ client: VarlinkClient, _ method: PoolInterface.Method,
                                _ parameters: some Encodable & Sendable = NoParameters(), returning: Reply.Type) throws -> Reply {
        do {
            return try VarlinkClient.decode(client.call(method.qualifiedName, parameters), as: Reply.self)
        } catch {
            throw report(error)
        }
    }

    /// Prints why a call failed and returns the exit status to leave with.
    func report(_ error: Error) -> ExitCode {
        switch error {
        case let refusal as PoolError:
            if json { Output.json(RefusalJSON(error: refusal.name, parameters: refusal.parameters)) }
            Output.error("refused: \(refusal)")
            if let hint = Self.hint(for: refusal) { Output.info("  hint: " + hint) }
            return Outcome.refused.exitCode
        case let failure as VarlinkClientError:
            Output.error("\(failure) (socket \(socketPath))")
            return Outcome.unreachable.exitCode
        default:
            Output.error("unexpected reply from the daemon: \(error)")
            return Outcome.refused.exitCode
        }
    }
}

extension GlobalOptions {
    /// What to do about a refusal that is about who is asking rather than what was asked.
    static func hint(for refusal: PoolError) -> String? {
        switch refusal.shortName {
        case "PermissionDenied":
            let group = refusal.parameters.group ?? "poold"
            return "reading (status, jobs, job) is open to anyone; to change things run poolctl as root (sudo), or ask an administrator for membership of group '\(group)' (usermod -aG \(group) $USER) and log in again"
        case "TooManyConnections":
            return "too many clients are connected; end some (a `status --follow`, a waiting `run`) and try again"
        default:
            return nil
        }
    }
}

/// An error reply as `--json` prints it.
struct RefusalJSON: Encodable {
    let error: String
    let parameters: PoolError.Parameters
}
