import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// poolctl's word when it cannot reach the daemon, by cause: nothing at the path, a socket it may
/// not open, a stale socket nobody listens on, a path that is no socket; each exits 3 with a hint
/// that fits, and with `--json` an error object on stdout.
@Suite(.timeLimit(.minutes(2)))
struct PoolctlConnectionErrorTests {
    private struct Failure: Decodable {
        let error: String
        let parameters: Parameters
        struct Parameters: Decodable {
            let socket: String
            let cause: String
            let reason: String
            let hint: String
        }
    }

    /// Runs `poolctl --socket SOCKET status` twice, in text and JSON, and checks both.
    private func unreachable(_ socket: String, as user: [String] = [], poolctl: String = Binaries.poolctl,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> (text: CommandResult, json: Failure) {
        let command = user.isEmpty ? poolctl : "/usr/sbin/runuser"
        let prefix = user.isEmpty ? [] : user + ["--", poolctl]
        let text = try runProgram(command, prefix + ["--socket", socket, "status"])
        #expect(text.status == 3 && text.stdout.isEmpty, "\(text.stdout)\(text.stderr)", sourceLocation: sourceLocation)
        let json = try runProgram(command, prefix + ["--socket", socket, "--json", "status"])
        #expect(json.status == 3, sourceLocation: sourceLocation)
        let failure = try json.json(Failure.self)
        #expect(failure.error == "poolctl.DaemonUnreachable" && failure.parameters.socket == socket, sourceLocation: sourceLocation)
        #expect(text.stderr.contains(failure.parameters.reason) && text.stderr.contains("hint: " + failure.parameters.hint),
                sourceLocation: sourceLocation)
        return (text, failure)
    }

    @Test func nothingAtThePathSaysNoDaemonRunsAndHowToStartOne() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/p.sock"
        let (text, json) = try unreachable(socket)
        #expect(json.parameters.cause == "notRunning")
        #expect(text.stderr.contains("no poold is running at \(socket)") && json.parameters.hint.contains("poold --socket \(socket)"), "\(text.stderr)")
    }

    @Test func aDirectoryOrARegularFileIsNoSocketAndIsLeftAlone() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (_, asDirectory) = try unreachable(directory.path)
        #expect(asDirectory.parameters.cause == "notASocket" && asDirectory.parameters.reason.contains("is a directory"))
        #expect(!asDirectory.parameters.hint.contains("Start it"), "a directory is no reason to start a daemon")

        let file = directory.path + "/notes"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep".utf8)))
        let (_, asFile) = try unreachable(file)
        #expect(asFile.parameters.cause == "notASocket" && asFile.parameters.reason.contains("is a regular file"))
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "keep")

        // A directory holding the socket: poolctl suggests it.
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let folder = (daemon.socketPath as NSString).deletingLastPathComponent
        if (daemon.socketPath as NSString).lastPathComponent == "poold.sock" {
            #expect(try unreachable(folder).json.parameters.hint.contains("--socket \(daemon.socketPath)"))
        }
        try daemon.stop()
    }

    @Test func aStaleSocketIsRefusedAndSaidToBeStale() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/stale.sock"
        // Bound and closed without unlinking: what a daemon killed with SIGKILL leaves.
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(withUnixAddress(socket) { bind(fd, $0, $1) } == 0)
        close(fd)
        let (text, json) = try unreachable(socket)
        #expect(json.parameters.cause == "refused")
        #expect(text.stderr.contains("stale socket") && json.parameters.hint.contains("start poold again"), "\(text.stderr)")
    }

    @Test func aSocketTheCallerMayNotOpenNamesItsOwnerAndModeNotStartingADaemon() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let folder = (daemon.socketPath as NSString).deletingLastPathComponent
        // poolctl from a copy nobody may run (the build folder may be out of its reach), kept
        // outside the socket's folder, which is closed to nobody below.
        let programs = try TemporaryDirectory()
        defer { programs.remove() }
        let copy = programs.path + "/poolctl"
        try FileManager.default.copyItem(atPath: Binaries.poolctl, toPath: copy)
        #expect(chmod(copy, 0o755) == 0 && chmod(programs.path, 0o755) == 0 && chmod(folder, 0o755) == 0)
        #expect(chmod(daemon.socketPath, 0o660) == 0)

        let (text, json) = try unreachable(daemon.socketPath, as: ["-u", "nobody"], poolctl: copy)
        #expect(json.parameters.cause == "permissionDenied")
        #expect(json.parameters.reason.contains("belongs to root:root with mode 0660"), "\(json.parameters.reason)")
        #expect(!text.stderr.contains("is poold running") && !json.parameters.hint.contains("usermod"),
                "root's group is no group to join: \(text.stderr)")

        // A group that exists and may connect: joining it is the advice.
        #expect(chown(daemon.socketPath, 0, 1) == 0)  // group daemon (gid 1)
        let (_, grouped) = try unreachable(daemon.socketPath, as: ["-u", "nobody"], poolctl: copy)
        #expect(grouped.parameters.hint.contains("usermod -aG daemon"), "\(grouped.parameters.hint)")

        // A directory on the way that nobody may enter.
        #expect(chmod(folder, 0o700) == 0)
        let (_, hidden) = try unreachable(daemon.socketPath, as: ["-u", "nobody"], poolctl: copy)
        #expect(hidden.parameters.cause == "permissionDenied" && hidden.parameters.reason.contains("may not enter \(folder)"))
        #expect(chmod(folder, 0o755) == 0)
        #expect(try daemon.status().workers.count == 1, "the daemon served on")
        try daemon.stop()
    }

    @Test func aUsageErrorWithJSONIsAnObjectOnStdout() throws {
        let result = try runProgram(Binaries.poolctl, ["--json", "run", "counter", "--mode", "sloppy"])
        #expect(result.status == 2)
        let object = try JSONDecoder().decode([String: JSONValue].self, from: Data(result.stdout.utf8))
        #expect(object["error"]?.stringValue == "poolctl.UsageError")
        #expect(object["parameters"]?["reason"]?.stringValue?.contains("--mode") == true, "\(result.stdout)")
    }
}
