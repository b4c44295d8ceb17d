import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The state directory, created when missing and held for as long as the daemon runs: an exclusive
/// `flock` on `history.lock` in it, so that two daemons never write one history (their job ids
/// would collide). The kernel drops the lock when the process dies, however it dies; the descriptor
/// is close-on-exec, and workers are spawned with every descriptor above stderr closed.
///
/// The file also holds the last job id handed out, written before a client sees the id: the
/// database may lag behind (its writes are batched, and fail on a full disk), and ids must never
/// be handed out twice, even after a crash. The record has a fixed size, so overwriting it
/// allocates nothing: it is written even when the file system is full.
final class StateDirectoryLock: Sendable {
    static let fileName = "history.lock"
    static let hint = "choose a writable directory with --state-dir (under systemd: StateDirectory=)"

    let directory: String
    let path: String
    /// The last job id an earlier holder of the directory recorded (0: none).
    let previousLastID: Int
    private let descriptor: Int32

    private init(directory: String, path: String, descriptor: Int32, previousLastID: Int) {
        self.directory = directory
        self.path = path
        self.descriptor = descriptor
        self.previousLastID = previousLastID
    }

    /// Takes the directory; `lastID` is what this daemon has handed out already (when it takes a
    /// directory again that was removed under it).
    static func acquire(directory: String, lastID: Int = 0) throws(HistoryError) -> StateDirectoryLock {
        try makeDirectory(directory)
        let path = directory + "/" + fileName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw .system("cannot create", path: path, errno: errno, hint: hint) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = Record.read(descriptor).pid
            close(descriptor)
            if code == EWOULDBLOCK {
                throw HistoryError("another poold\(holder.map { " (pid \($0))" } ?? "") keeps its job history in \(directory); give this one its own --state-dir")
            }
            throw .system("cannot lock", path: path, errno: code, hint: hint)
        }
        // A value no poold writes (a damaged or hand-edited file) is not a job id: ignored.
        let previous = Record.read(descriptor).lastID.flatMap { JobID.valid.contains($0) ? $0 : nil } ?? 0
        let lock = StateDirectoryLock(directory: directory, path: path, descriptor: descriptor, previousLastID: previous)
        _ = ftruncate(descriptor, 0)
        do {
            try lock.record(lastID: max(previous, lastID))
        } catch {
            close(descriptor)
            throw error
        }
        return lock
    }

    /// Records `lastID` as the last job id handed out (with who holds the lock, for the message
    /// above). A plain write to the page cache: a crash of the daemon does not lose it.
    func record(lastID: Int) throws(HistoryError) {
        let text = Record(pid: Int(getpid()), lastID: lastID).text
        let written = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        guard written == text.utf8.count else {
            let code = written < 0 ? errno : EIO
            throw .system("cannot record the last job id in", path: path, errno: code,
                          hint: "\(FreeSpace.describe(directory)); \(Self.hint)")
        }
    }

    /// Closing the descriptor releases the lock.
    func release() {
        close(descriptor)
    }

    /// Whether the lock file is still the one at `path` (it was not removed or replaced), or why not.
    func lossReason() -> String? {
        var held = stat(), named = stat()
        guard fstat(descriptor, &held) == 0 else { return nil }
        if held.st_nlink == 0 { return "\(path) was removed" }
        guard stat(path, &named) == 0 else { return "\(path) is gone (\(String(cString: strerror(errno))))" }
        if named.st_dev != held.st_dev || named.st_ino != held.st_ino { return "\(path) was replaced by another file" }
        return nil
    }

    /// `pid=N last-job=N`, padded to a fixed width.
    private struct Record {
        static let width = 64
        var pid: Int?
        var lastID: Int?

        var text: String {
            let line = "pid=\(pid ?? 0) last-job=\(lastID ?? 0)"
            return line + String(repeating: " ", count: max(0, Self.width - 1 - line.utf8.count)) + "\n"
        }

        /// What a lock file says; the pid alone in files of earlier versions.
        static func read(_ descriptor: Int32) -> Record {
            var buffer = [UInt8](repeating: 0, count: 128)
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return Record() }
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            var record = Record()
            for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                let parts = field.split(separator: "=", maxSplits: 1)
                if parts.count == 1 { record.pid = Int(parts[0]) }
                else if parts[0] == "pid" { record.pid = Int(parts[1]) }
                else if parts[0] == "last-job", let id = Int(parts[1]), id >= 0 { record.lastID = id }
            }
            return record
        }
    }

    /// `mkdir -p`, the directories it creates private to the daemon's user and group.
    static func makeDirectory(_ directory: String) throws(HistoryError) {
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
}

/// The free space of the file system holding a path, for messages about a full disk.
enum FreeSpace {
    static func bytes(_ path: String) -> UInt64? {
        var status = statvfs()
        guard statvfs(path, &status) == 0 else { return nil }
        return UInt64(status.f_bavail) &* UInt64(status.f_frsize)
    }

    static func describe(_ path: String) -> String {
        guard let free = bytes(path) else { return "the free space of \(path) is unknown" }
        return "\(format(free)) free on the file system of \(path)"
    }

    static func format(_ bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (unit, size) in units where bytes >= size {
            return String(format: "%.1f ", Double(bytes) / Double(size)) + unit
        }
        return "\(bytes) bytes"
    }
}
