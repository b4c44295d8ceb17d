#if canImport(Glibc)
import Glibc
#endif

/// systemd socket activation (sd_listen_fds semantics): the listening socket arrives as
/// descriptor 3 when LISTEN_PID is this process and LISTEN_FDS is at least 1. `main` read and
/// removed the variables before any thread started; their values come in `environment`.
enum SocketActivation {
    static let firstDescriptor: Int32 = 3

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The inherited listening socket, nil when the daemon was not socket-activated.
    static func listeningSocket(environment: [String: String]) throws(Problem) -> Int32? {
        guard let count = environment["LISTEN_FDS"].flatMap(Int.init), count > 0 else { return nil }
        guard environment["LISTEN_PID"].flatMap(Int32.init) == getpid() else { return nil }
        let fd = firstDescriptor
        var listening: Int32 = 0, domain: Int32 = 0, type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else {
            throw Problem(description: "socket activation passed descriptor 3, but it is not a listening socket")
        }
        length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length)
        length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length)
        guard domain == AF_UNIX, type == Int32(SOCK_STREAM.rawValue) else {
            throw Problem(description: "socket activation passed a socket that is not a Unix stream socket (ListenStream= a path)")
        }
        // Never inherited by anything the daemon starts (posix_spawn closes it anyway).
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // The descriptors beyond the first are not ours to use; close them rather than leak them.
        if count > 1 { for extra in 1..<count { close(fd + Int32(extra)) } }
        return fd
    }
}
