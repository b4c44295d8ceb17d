import ArgumentParser
import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The daemon's socket (default: $POOLD_SOCKET, else /run/poold.sock for root, $XDG_RUNTIME_DIR/poold.sock otherwise).")
    var socket: String?

    @Flag(help: "Print JSON on stdout and nothing else.")
    var json = false

    var socketPath: String { socket ?? DefaultSocket.path(environment: ProcessInfo.processInfo.environment) }

    /// Connects, or exits with status 3 and a message saying why (nothing there, permission,
    /// a stale socket, not a socket) and what to do.
    func connect() throws -> VarlinkClient {
        do {
            return try VarlinkClient(socketPath: socketPath)
        } catch {
            guard case .unreachable(_, let reason, let errno) = error else { throw report(error) }
            let unreachable = UnreachableDaemon(socket: socketPath, errno: errno, reason: reason)
            if json { Output.json(unreachable.json) }
            Output.error(unreachable.reason)
            Output.info("  hint: " + unreachable.hint)
            throw Outcome.unreachable.exitCode
        }
    }

    /// Makes a call and decodes its reply, turning an error reply into exit status 4 and a lost
    /// connection into status 3.
    func call<Reply: Decodable>(_ client: VarlinkClient, _ method: PoolInterface.Method,
                                _ parameters: some Encodable & Sendable = NoParameters(), returning: Reply.Type,
                                options: [String: String] = [:]) throws -> Reply {
        do {
            return try VarlinkClient.decode(client.call(method.qualifiedName, parameters), as: Reply.self)
        } catch {
            throw report(error, options: options)
        }
    }

    /// Prints why a call failed and returns the exit status to leave with.
    /// `options`: the command's option for a job parameter whose name is not its own (event's
    /// `timeout` is `--wait-timeout`); the others are the parameter in kebab case.
    func report(_ error: Error, options: [String: String] = [:]) -> ExitCode {
        switch error {
        case let refusal as PoolError:
            if json { Output.json(RefusalJSON(error: refusal.name, parameters: refusal.parameters)) }
            if refusal.shortName == "InvalidParameter", let parameter = refusal.parameters.parameter, let reason = refusal.parameters.reason {
                // The daemon names its parameters (consumeDelay); the person typed the option (--consume-delay).
                Output.error("refused: \(options[parameter] ?? Self.option(for: parameter)): \(reason) (\(refusal.name))")
            } else {
                Output.error("refused: \(refusal)")
            }
            if let hint = Self.hint(for: refusal) { Output.info("  hint: " + hint) }
            return Outcome.refused.exitCode
        case let failure as VarlinkClientError:
            if json { Output.json(UnreachableJSON(error: "poolctl.ConnectionLost", parameters: .init(
                socket: socketPath, cause: .other, reason: "\(failure)", hint: "check that poold still runs (`poolctl status`)"))) }
            Output.error("\(failure) (socket \(socketPath))")
            return Outcome.unreachable.exitCode
        default:
            Output.error("unexpected reply from the daemon: \(error)")
            return Outcome.refused.exitCode
        }
    }
}

extension GlobalOptions {
    /// `consumeDelay` as poolctl spells it: `--consume-delay`.
    static func option(for parameter: String) -> String {
        "--" + parameter.reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
    }

    /// What to do about a refusal that is about who is asking rather than what was asked.
    static func hint(for refusal: PoolError) -> String? {
        switch refusal.shortName {
        case "PermissionDenied":
            let reading = "reading (status, jobs, job) is open to anyone; to change things run poolctl as root (sudo)"
            // Membership is worth suggesting only for a group that exists on this machine.
            guard let group = refusal.parameters.group, getgrnam(group) != nil else { return reading + " or as the daemon's own user" }
            return reading + ", or ask an administrator for membership of group '\(group)' (`sudo usermod -aG \(group) $USER`) and log in again"
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
