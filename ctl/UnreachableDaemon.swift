import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Why poolctl cannot reach the daemon, told apart by what is at the socket's path and what
/// connect(2) said, with what to do about it: "is poold running?" is the wrong advice for a
/// socket the caller may not open, or for a path that is no socket at all.
struct UnreachableDaemon: Error {
    enum Cause: String, Encodable {
        /// Nothing at the path: no daemon uses it.
        case notRunning
        /// The caller may not connect (the socket's mode, or a directory on the way).
        case permissionDenied
        /// A socket nobody listens on: left by a daemon that stopped without removing it, or died.
        case refused
        /// The path is a directory, a regular file or anything else but a socket.
        case notASocket
        case other
    }

    let socket: String
    let cause: Cause
    let reason: String
    let hint: String

    init(socket: String, errno error: Int32, reason connectReason: String) {
        self.socket = socket
        var info = stat()
        let exists = lstat(socket, &info) == 0
        let type = info.st_mode & S_IFMT
        if exists, type != S_IFSOCK {
            cause = .notASocket
            let what = type == S_IFDIR ? "a directory" : type == S_IFREG ? "a regular file" : "not a socket"
            reason = "\(socket) is \(what), not poold's socket"
            let inside = socket + "/poold.sock"
            hint = type == S_IFDIR && FileManager.default.fileExists(atPath: inside)
                ? "did you mean --socket \(inside)?"
                : "point --socket or $POOLD_SOCKET at the socket poold listens on (its --socket; /run/poold.sock under systemd)"
            return
        }
        switch error {
        case ENOENT where !exists:
            cause = .notRunning
            reason = "no poold is running at \(socket) (nothing is there)"
            hint = Self.howToStart(socket: socket)
        case EACCES, EPERM:
            cause = .permissionDenied
            (reason, hint) = Self.permissionDenied(socket: socket, info: exists ? info : nil)
        case ECONNREFUSED:
            cause = .refused
            reason = "nothing listens on \(socket): a stale socket, left by a poold that stopped or died"
            hint = "start poold again; it replaces a stale socket (\(Self.howToStart(socket: socket)))"
        default:
            cause = .other
            reason = "cannot connect to \(socket): \(connectReason)"
            hint = "point --socket or $POOLD_SOCKET at the socket poold listens on"
        }
    }

    /// Under systemd, with the units installed and the packaged socket asked for, the unit starts
    /// it; anywhere else, the daemon is started by hand.
    private static func howToStart(socket: String) -> String {
        let unitDirectories = ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
                               "/usr/lib/systemd/system", "/lib/systemd/system"]
        let unitInstalled = unitDirectories.contains { FileManager.default.fileExists(atPath: $0 + "/poold.socket") }
        if unitInstalled, socket == DefaultSocket.systemPath {
            return "start it with `sudo systemctl start poold.socket` (or `sudo systemctl enable --now poold.service` to have it at boot)"
        }
        var hint = "start it with `poold --socket \(socket)`, or point --socket or $POOLD_SOCKET at its socket"
        if socket != DefaultSocket.systemPath, FileManager.default.fileExists(atPath: DefaultSocket.systemPath) {
            hint += "; a system poold listens on \(DefaultSocket.systemPath) (`export POOLD_SOCKET=\(DefaultSocket.systemPath)`)"
        }
        return hint
    }

    /// Who owns the socket and who may use it; joining a group is suggested only where that group
    /// exists and the caller is not yet in it (or is, but since a later login).
    private static func permissionDenied(socket: String, info: stat?) -> (reason: String, hint: String) {
        let directory = (socket as NSString).deletingLastPathComponent
        if !directory.isEmpty, access(directory, X_OK) != 0 {
            return ("permission denied: you may not enter \(directory), which holds \(socket)",
                    "run poolctl as root (sudo), or as a user who may enter \(directory)")
        }
        guard let info else {
            return ("permission denied on \(socket)", "run poolctl as root (sudo)")
        }
        let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(info.st_uid)"
        let groupName = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) }
        let mode = String(info.st_mode & 0o777, radix: 8)
        let reason = "permission denied: \(socket) belongs to \(owner):\(groupName ?? "gid \(info.st_gid)") with mode 0\(mode)"
        // Root's group is no group to join.
        guard let groupName, info.st_gid != 0, info.st_mode & 0o060 == 0o060 else {
            return (reason, "run poolctl as root (sudo) or as \(owner)")
        }
        if groupListsCaller(info.st_gid) {
            return (reason, "you were added to group '\(groupName)' after this session began: log in again (or run `newgrp \(groupName)`)")
        }
        return (reason, "join group '\(groupName)' (`sudo usermod -aG \(groupName) $USER`, then log in again), or run poolctl as root (sudo)")
    }

    /// Whether /etc/group names the caller as a member of `gid`.
    private static func groupListsCaller(_ gid: gid_t) -> Bool {
        guard let caller = getpwuid(getuid()), let group = getgrgid(gid) else { return false }
        if caller.pointee.pw_gid == gid { return true }
        let user = String(cString: caller.pointee.pw_name)
        var member = group.pointee.gr_mem
        while let name = member?.pointee {
            if String(cString: name) == user { return true }
            member = member?.advanced(by: 1)
        }
        return false
    }

    /// The `--json` form: the shape of a refusal (`error`, `parameters`).
    var json: UnreachableJSON {
        UnreachableJSON(parameters: .init(socket: socket, cause: cause, reason: reason, hint: hint))
    }
}

struct UnreachableJSON: Encodable {
    var error = "poolctl.DaemonUnreachable"
    let parameters: Parameters

    struct Parameters: Encodable {
        let socket: String
        let cause: UnreachableDaemon.Cause
        let reason: String
        let hint: String
    }
}

/// A usage error as `--json` prints it.
struct UsageErrorJSON: Encodable {
    var error = "poolctl.UsageError"
    let parameters: Parameters

    struct Parameters: Encodable {
        let reason: String
    }
}
