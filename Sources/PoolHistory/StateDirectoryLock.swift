#if canImport(Glibc)
import Glibc
#endif

/// The state directory, created when missing and held for as long as the daemon runs: an exclusive
/// `flock` on `history.lock` in it, so that two daemons never write one history (their job ids
/// would collide). The kernel drops the lock when the process dies, however it dies; the descriptor
/// is close-on-exec, and workers are spawned with every descriptor above stderr closed.
final class StateDirectoryLock: Sendable {
    static let fileName = "history.lock"
    private static let hint = "choose a writable directory with --state-dir (under systemd: StateDirectory=)"

    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    static func acquire(directory: String) throws(HistoryError) -> StateDirectoryLock {
        try makeDirectory(directory)
        let path = directory + "/" + fileName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw .system("cannot create", path: path, errno: errno, hint: hint) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = readHolder(descriptor)
            close(descriptor)
            if code == EWOULDBLOCK {
                throw HistoryError("another poold\(holder.map { " (pid \($0))" } ?? "") keeps its job history in \(directory); give this one its own --state-dir")
            }
            throw .system("cannot lock", path: path, errno: code, hint: hint)
        }
        // Who holds it, for the message above; nothing depends on it.
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        return StateDirectoryLock(descriptor: descriptor)
    }

    /// Closing the descriptor releases the lock.
    func release() {
        close(descriptor)
    }

    /// `mkdir -p`, the directories it creates private to the daemon's user and group.
    private static func makeDirectory(_ directory: String) throws(HistoryError) {
        guard !directory.isEmpty else { throw HistoryError("the state directory is an empty path; \(hint)") }
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o750) != 0, errno != EEXIST {
                throw .system("cannot create the state directory", path: prefix, errno: errno, hint: hint)
            }
        }
        var status = stat()
        guard stat(directory, &status) == 0 else {
            throw .system("cannot use the state directory", path: directory, errno: errno, hint: hint)
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw .system("cannot use the state directory", path: directory, errno: ENOTDIR, hint: hint)
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw .system("cannot write to the state directory", path: directory, errno: errno, hint: hint)
        }
    }

    private static func readHolder(_ descriptor: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[..<count], as: UTF8.self).filter(\.isNumber))
    }
}
