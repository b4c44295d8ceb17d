import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a control connection, as the kernel recorded it when the client
/// called connect(2): SO_PEERCRED (pid, uid, primary gid) and SO_PEERGROUPS (supplementary groups).
/// Both are snapshots taken at connect time, so a client cannot change them afterwards and there is
/// no race with the client's process exiting or its pid being reused. Read once per connection.
struct PeerCredentials: Sendable, CustomStringConvertible {
    let pid: Int32
    let uid: UInt32
    let gid: UInt32
    let groups: [UInt32]

    var isRoot: Bool { uid == 0 }

    func isMember(of gid: gid_t) -> Bool {
        self.gid == gid || groups.contains(gid)
    }

    var description: String {
        "uid \(uid) (gid \(gid)\(groups.isEmpty ? "" : ", groups " + groups.map(String.init).joined(separator: ",")); pid \(pid))"
    }

    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// `struct ucred` from <sys/socket.h>, which Glibc's module map leaves out (it needs _GNU_SOURCE).
    private struct KernelCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Room for the supplementary groups SO_PEERGROUPS returns. NIO's getsockopt reports no length,
    /// and zero-fills the buffer, so a trailing 0 cannot be told from padding: zeros are dropped
    /// (and group 0 is never a control group). A client in more groups than this is read from
    /// /proc instead.
    private struct KernelGroups: Sendable {
        var gids = InlineArray<1024, UInt32>(repeating: 0)
    }

    private static let peerGroupsOption: SocketOptionName = 59   // SO_PEERGROUPS, Linux 4.13

    /// Reads the peer of an accepted Unix socket; on the channel's event loop, it does not block.
    static func of(_ channel: any Channel) throws(Unavailable) -> PeerCredentials {
        guard let provider = channel as? any SocketOptionProvider else {
            throw Unavailable(description: "the channel offers no socket options")
        }
        let credentials: KernelCredentials
        do {
            credentials = try immediate(provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SO_PEERCRED))
        } catch {
            throw Unavailable(description: "SO_PEERCRED: \(error)")
        }
        var groups: [UInt32]
        do {
            let kernel: KernelGroups = try immediate(provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: peerGroupsOption))
            groups = []
            for index in kernel.gids.indices where kernel.gids[index] != 0 { groups.append(kernel.gids[index]) }
        } catch {
            // ERANGE: more groups than fit; ENOPROTOOPT: a kernel older than 4.13. The process's
            // status is the next best source (racy: it is read now, not at connect time).
            groups = supplementaryGroupsFromProc(pid: credentials.pid)
        }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid, groups: groups)
    }

    /// The value of a future that NIO completed at once (socket options read on the channel's own
    /// loop are): waiting on it there would be a deadlock, which NIO refuses.
    private static func immediate<Value>(_ future: EventLoopFuture<Value>) throws -> Value {
        var outcome: Result<Value, any Error>?
        future.assumeIsolated().whenComplete { outcome = $0 }
        guard let outcome else { throw Unavailable(description: "the socket option was not read on the channel's event loop") }
        return try outcome.get()
    }

    /// The `Groups:` line of /proc/PID/status (procfs: answered from kernel memory, no disk I/O).
    private static func supplementaryGroupsFromProc(pid: Int32) -> [UInt32] {
        guard let file = fopen("/proc/\(pid)/status", "r") else { return [] }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 65536)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("Groups:") else { continue }
            return text.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                .compactMap { UInt32($0) }.filter { $0 != 0 }
        }
        return []
    }
}
