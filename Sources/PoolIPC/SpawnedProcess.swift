import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A child started with posix_spawn (never fork without exec: the parent is multi-threaded Swift)
/// and watched through a pidfd, which cannot be confused with a recycled pid.
public struct SpawnedProcess: Sendable {
    public let pid: pid_t
    /// Readable when the process has exited; poll it, then `reap()`.
    public let pidfd: Int32

    /// Spawns `path` with `arguments` (argv[0] included) and `environment`: every descriptor above
    /// stderr closed, signal mask emptied, dispositions reset, in a process group of its own.
    /// `inheriting`, when given, is the child's fd 3 (`inheritedDescriptor`).
    public static func spawn(path: String, arguments: [String], environment: [String],
                             inheriting descriptor: Int32? = nil) throws(IPCError) -> SpawnedProcess {
        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in pool_spawn_inheriting(&pid, path, argv, envp, descriptor ?? -1) }
        }
        guard rc == 0 else { throw IPCError("posix_spawn(\(path))", errno: rc) }
        let pidfd = pool_pidfd_open(pid)
        guard pidfd >= 0 else {
            let error = IPCError("pidfd_open(\(pid))")
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw error
        }
        return SpawnedProcess(pid: pid, pidfd: pidfd)
    }

    /// Where a child finds the descriptor it was spawned `inheriting`.
    public static let inheritedDescriptor: Int32 = 3

    /// Sends a signal through the pidfd, so it can never hit a recycled pid.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        pool_pidfd_send_signal(pidfd, signal) == 0
    }

    /// Collects the exit status if the process has exited (closing the pidfd); nil while it runs.
    public func reap() -> ProcessExit? {
        var code: Int32 = 0, status: Int32 = 0
        guard pool_pidfd_reap(pidfd, &code, &status) == 1 else { return nil }
        close(pidfd)
        return code == CLD_EXITED ? .exited(status) : .signalled(status)
    }
}

/// How a child ended.
public enum ProcessExit: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signalled(let signal):
            // Both names: SIGBUS says more to whoever reads a job's record than "Bus error" alone.
            let abbreviation = pool_signal_abbreviation(signal).map { "SIG" + String(cString: $0) }
            let description = strsignal(signal).map { String(cString: $0) }
            let name = [abbreviation, description].compactMap { $0 }.joined(separator: ": ")
            return "killed by signal \(signal)" + (name.isEmpty ? "" : " (\(name))")
        }
    }
}

/// Runs `body` with a NULL-terminated array of C strings that lives for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
