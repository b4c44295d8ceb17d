#if canImport(Glibc)
import Glibc
#endif

/// Takes the control socket's path for this daemon, or says precisely why it cannot: the path is
/// unusable, another poold holds it (a lock file beside it), or something else listens there. A
/// socket file nobody listens on is stale and replaced; anything else is never touched.
struct SocketClaim {
    let path: String
    let lockPath: String
    private let lockDescriptor: Int32

    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    static func acquire(path: String) throws(Refusal) -> SocketClaim {
        let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        guard path.hasPrefix("/") else { throw Refusal(description: "the socket path must be absolute: \(path)") }
        guard path.utf8.count <= limit else {
            throw Refusal(description: "the socket path is \(path.utf8.count) bytes long; Unix sockets allow \(limit): \(path)")
        }
        let directory = String(path[..<path.lastIndex(of: "/")!])
        var info = stat()
        guard stat(directory.isEmpty ? "/" : directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw Refusal(description: "the socket's directory \(directory) does not exist")
        }

        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw Refusal(description: "cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = readPID(fd).map { " (pid \($0))" } ?? ""
            close(fd)
            throw Refusal(description: "another poold\(holder) is serving \(path); stop it first or choose another --socket")
        }

        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                close(fd)
                throw Refusal(description: "\(path) exists and is not a socket; refusing to replace it")
            }
            if someoneListens(on: path) {
                close(fd)
                throw Refusal(description: "a server that is not poold is listening on \(path); refusing to take its socket")
            }
            unlink(path)
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        return SocketClaim(path: path, lockPath: lockPath, lockDescriptor: fd)
    }

    /// Removes the socket and the lock file; called as the daemon exits.
    func release() {
        unlink(path)
        unlink(lockPath)
        close(lockDescriptor)
    }

    private static func readPID(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func someoneListens(on path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return rc == 0
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(self.drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}

extension Set where Element == Character {
    fileprivate static var whitespacesAndNewlines: Set<Character> { [" ", "\n", "\t", "\r"] }
}
