import Dispatch
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Names of IPC objects for one test: `/poold-test-<pid>-<tag>-<random>`, unique across concurrently
/// running tests and test processes, and easy to find if one leaks.
enum TestNames {
    static func unique(_ tag: String) -> String {
        "/poold-test-\(getpid())-\(tag)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One run of the `ipc-probe` helper (built next to the test bundle) as a real second process, with its
/// stdout read line by line for handshakes, and its exit awaited with a time limit so that a broken
/// primitive fails the test rather than hanging it.
final class Probe {
    /// `ipc-probe` in the directory of the running test executable (`.build/debug/`, typically).
    static let executablePath: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard count > 0 else { return "ipc-probe" }
        let executable = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("ipc-probe").path
    }()

    let arguments: [String]
    private let process = Process()
    private let output = Pipe()
    private let errors = Pipe()
    private let exited = DispatchSemaphore(value: 0)
    private var pending: [UInt8] = []
    private var atEndOfOutput = false
    private var reaped = false

    /// Starts `ipc-probe` with `arguments`.
    convenience init(_ arguments: String...) throws {
        try self.init(arguments: arguments)
    }

    init(arguments: [String]) throws {
        self.arguments = arguments
        guard FileManager.default.isExecutableFile(atPath: Self.executablePath) else {
            throw ProbeError("ipc-probe not found at \(Self.executablePath); build with `swift build --build-tests`")
        }
        process.executableURL = URL(fileURLWithPath: Self.executablePath)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
    }

    deinit {
        // A test that failed half-way must not leave a probe blocked in pause() or a futex behind.
        if !reaped {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            _ = exited.wait(timeout: .now() + 10)
        }
    }

    var pid: pid_t { process.processIdentifier }

    /// The next line the probe writes to stdout, without its newline; nil once stdout is closed.
    func readLine(timeout: Duration = .seconds(30)) throws -> String? {
        let descriptor = output.fileHandleForReading.fileDescriptor
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            if atEndOfOutput {
                guard !pending.isEmpty else { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else {
                throw ProbeError("no line from ipc-probe \(arguments.joined(separator: " ")) within \(timeout)")
            }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1
            let ready = poll(&poller, 1, Int32(clamping: milliseconds))
            if ready < 0 && errno != EINTR { throw ProbeError("poll: \(String(cString: strerror(errno)))") }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw ProbeError("read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { atEndOfOutput = true } else { pending += chunk[..<count] }
        }
    }

    /// Sends `signal` to the probe (which must still be running: it is not reaped before `waitForExit`).
    func send(signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the probe to end, at most `timeout`; its exit status or the signal that killed it.
    func waitForExit(timeout: Duration = .seconds(30)) throws -> ProbeExit {
        if !reaped {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
            guard exited.wait(timeout: .now() + seconds) == .success else {
                throw ProbeError("ipc-probe \(arguments.joined(separator: " ")) still running after \(timeout)")
            }
            process.waitUntilExit()  // returns at once: the termination handler has run
            reaped = true
        }
        switch process.terminationReason {
        case .exit: return .exited(process.terminationStatus)
        case .uncaughtSignal: return .signalled(process.terminationStatus)
        @unknown default: return .exited(process.terminationStatus)
        }
    }

    /// What the probe wrote to stderr, once it has exited.
    func standardError() -> String {
        String(decoding: Self.drain(errors), as: UTF8.self)
    }

    /// Runs a probe that is expected to finish on its own: its stdout lines, its exit and its stderr.
    /// The probe's output is small, so it fits the pipe and is read once the probe has exited (not up to
    /// end of file, which a probe spawned concurrently by another test might hold open).
    static func run(_ arguments: String..., timeout: Duration = .seconds(30)) throws -> ProbeResult {
        let probe = try Probe(arguments: arguments)
        let exit = try probe.waitForExit(timeout: timeout)
        probe.pending += drain(probe.output)
        var lines = probe.pending.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if lines.last == "" { lines.removeLast() }
        return ProbeResult(lines: lines, exit: exit, standardError: probe.standardError())
    }

    /// Whatever is in a pipe now, without blocking.
    private static func drain(_ pipe: Pipe) -> [UInt8] {
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var collected: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            collected += chunk[..<count]
        }
        return collected
    }
}

struct ProbeResult {
    let lines: [String]
    let exit: ProbeExit
    let standardError: String
}

enum ProbeExit: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    var description: String {
        switch self {
        case .exited(let status): return "exited with status \(status)"
        case .signalled(let signal): return "killed by signal \(signal)"
        }
    }
}

/// What the kernel says about a process, for handshakes that stdout cannot give.
enum Kernel {
    /// `SYS_futex`, which Glibc's Swift overlay does not import.
    #if arch(x86_64)
    static let futexSyscallNumber = 202
    #elseif arch(arm64)
    static let futexSyscallNumber = 98
    #else
    #error("futexSyscallNumber: add this architecture's SYS_futex")
    #endif

    /// Whether the main thread of `pid` is blocked in a `futex(FUTEX_WAIT)` system call right now
    /// (`/proc/<pid>/syscall`: the syscall number, then its arguments; "running" when not in one).
    static func isBlockedInFutexWait(_ pid: pid_t) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/syscall", encoding: .utf8) else { return false }
        let fields = text.split(separator: " ")
        guard fields.count > 2, fields[0] == "\(futexSyscallNumber)" else { return false }
        // The second argument is the operation: FUTEX_WAIT (0), shared (no FUTEX_PRIVATE_FLAG).
        return fields[2] == "0x0"
    }

    /// Spins (yielding the CPU) until `condition` holds or `timeout` passes; whether it held.
    static func await(_ timeout: Duration, until condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            sched_yield()
        }
        return condition()
    }

    /// Whether this process holds CAP_SYS_RESOURCE, which lets mq_open exceed fs.mqueue.msg_max.
    static var hasSysResourceCapability: Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << 24) != 0  // CAP_SYS_RESOURCE
    }
}
