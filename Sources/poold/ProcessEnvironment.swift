import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The environment, split at start-up between what the daemon keeps for itself (socket
/// activation, service notification) and what its workers inherit.
struct ProcessEnvironment {
    /// Variables meant for the daemon alone: a worker must never believe it was socket-activated
    /// or may notify the service manager.
    static let daemonOnly: Set<String> = [
        "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
    ]

    let daemon: [String: String]
    let forWorkers: [String]

    /// Reads the environment and removes the daemon-only variables from it. Must run before any
    /// thread starts (setenv and unsetenv are not thread-safe).
    static func takeActivationVariables() -> ProcessEnvironment {
        var all: [String: String] = [:]
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                all[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entries.append(text)
            cursor += 1
        }
        // Socket activation is for this process alone and must not leak into anything it starts;
        // NOTIFY_SOCKET stays set because sd_notify reads it at each call (workers never see it:
        // they are spawned with `forWorkers`).
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] { unsetenv(name) }
        let workers = entries.filter { entry in !daemonOnly.contains(where: { entry.hasPrefix($0 + "=") }) }
        return ProcessEnvironment(daemon: all, forWorkers: workers)
    }

    static var cpuCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

enum FileHandleOutput {
    static func standardError(_ text: String) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
