#if canImport(Glibc)
import Glibc
#endif

/// Whether a pid names a running process (of this pid namespace).
enum ProcessLiveness {
    /// True while the process runs. A zombie does not count: it has exited, and where nobody reaps
    /// orphans (a container whose init does not) a dead instance's workers stay zombies.
    static func isRunning(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return true }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return true }
        // "pid (comm) S ...": the state follows the last ')' (comm may contain anything).
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let close = line.lastIndex(of: ")") else { return true }
        let state = line[line.index(after: close)...].first { $0 != " " }
        return state != "Z" && state != "X"
    }
}
