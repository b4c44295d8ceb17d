import CPooldShim
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real terminal for a program, as a person has one: a tmux server of the test's own (on its own
/// socket, so that nothing else on the machine is touched), one window of a fixed size running the
/// program, its screen read with `capture-pane`. Unlike script(1), which writes `\r\n` for every
/// newline, the screen shows what a redraw left: a line redrawn in place stays one line.
final class TmuxTerminal {
    let directory: TemporaryDirectory
    private let socket: String
    private var closed = false

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    /// Starts `command` in a `columns` x `rows` window. The program sees only `environment` (and
    /// TERM, which tmux sets); the pane stays after it exits, for its last screen and exit status.
    init(_ command: [String], environment: [String: String] = [:], columns: Int = 100, rows: Int = 30) throws {
        directory = try TemporaryDirectory()
        socket = directory.path + "/tmux.sock"
        let configuration = directory.path + "/tmux.conf"
        try "set -g remain-on-exit on\nset -g status off\nset -g history-limit 5000\n"
            .write(toFile: configuration, atomically: true, encoding: .utf8)
        var base = ["PATH": "/usr/bin:/bin", "HOME": directory.path, "LANG": "C.UTF-8"]
        base.merge(environment) { $1 }
        // A shell waits for the program and says how it ended: tmux's own account of a dead pane
        // sometimes never comes. Its trap keeps it alive through Ctrl-C without the program
        // inheriting an ignored SIGINT.
        let shell = ["/bin/sh", "-c", "trap : INT; \"$@\"; echo \"\(Self.exitMark)$?]\"", "sh"]
        try tmux(["-f", configuration, "new-session", "-d", "-x", "\(columns)", "-y", "\(rows)", "--"] + shell + command,
                 environment: base)
    }

    deinit {
        close()
    }

    /// Ends the server and whatever still runs in it.
    func close() {
        guard !closed else { return }
        closed = true
        _ = try? tmux(["kill-server"])
        directory.remove()
    }

    /// The screen and the lines scrolled off it, as text; with `escapes`, with the escape sequences
    /// of its colours and attributes.
    func screen(escapes: Bool = false) throws -> String {
        try tmux(["capture-pane", "-p", "-S", "-"] + (escapes ? ["-e"] : []))
    }

    /// Reads the screen until `predicate` holds for it (the program writes when it will; this
    /// waits on what appears, with a deadline, not on a clock).
    @discardableResult
    func waitForScreen(_ what: String, timeoutSeconds: Double = 60, escapes: Bool = false,
                       _ predicate: (String) -> Bool) throws -> String {
        let end = Date().addingTimeInterval(timeoutSeconds)
        while true {
            let text = try screen(escapes: escapes)
            if predicate(text) { return text }
            guard Date() < end else {
                throw HarnessError(description: "gave up after \(timeoutSeconds) s waiting for \(what); the screen:\n\(text)")
            }
            usleep(50_000)
        }
    }

    @discardableResult
    func waitForScreen(containing text: String, timeoutSeconds: Double = 60) throws -> String {
        try waitForScreen("'\(text)'", timeoutSeconds: timeoutSeconds) { $0.contains(text) }
    }

    /// Types keys, in tmux's names (`C-c`).
    func sendKeys(_ keys: String...) throws {
        try tmux(["send-keys"] + keys)
    }

    private static let exitMark = "[program exited with status "

    /// The program's exit status once it has exited, 128 + N when signal N ended it (nil while it
    /// runs).
    func exitStatus() throws -> Int32? {
        guard let match = try screen().firstMatch(of: /\[program exited with status (\d+)\]/) else { return nil }
        return Int32(match.1)
    }

    func waitForExit(timeoutSeconds: Double = 60) throws -> Int32 {
        let screen = try waitForScreen("the program to exit", timeoutSeconds: timeoutSeconds) { $0.contains(Self.exitMark) }
        return Int32(screen.firstMatch(of: /\[program exited with status (\d+)\]/)!.1)!
    }

    /// The screen's lines that are not empty.
    static func nonEmptyLines(_ screen: String) -> [Substring] {
        screen.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.allSatisfy(\.isWhitespace) }
    }

    /// Runs a tmux client. Not through `Process`: the server the first client forks would keep the
    /// descriptor Foundation watches for the client's exit, and the wait would never end. Spawned
    /// with every other descriptor closed (`pool_spawn`), by a shell that redirects its output.
    @discardableResult
    private func tmux(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let out = directory.path + "/tmux.out", err = directory.path + "/tmux.err"
        let argv = ["/bin/sh", "-c", "exec \"$0\" \"$@\" </dev/null >'\(out)' 2>'\(err)'", "/usr/bin/tmux", "-u", "-S", socket] + arguments
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0)=\($1)" }
        let status = try Self.spawnAndWait(argv, environment: env)
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            throw HarnessError(description: "tmux \(arguments.joined(separator: " ")) exited with \(status): \(stderr)")
        }
        return stdout
    }

    private static func spawnAndWait(_ argv: [String], environment: [String]) throws -> Int32 {
        func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
        let cArgv = cStrings(argv), cEnv = cStrings(environment)
        defer { (cArgv + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = pool_spawn(&pid, argv[0], cArgv, cEnv)
        guard rc == 0 else { throw HarnessError(description: "cannot spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw HarnessError(description: "waitpid: \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
