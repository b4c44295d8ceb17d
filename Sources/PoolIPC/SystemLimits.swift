import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// The kernel limits that bound POSIX message queues, read when they are needed for an error message
/// or a capacity check.
public enum SystemLimits {
    /// `/proc/sys/fs/mqueue/msg_max`: the deepest queue an unprivileged process may create.
    public static var messageQueueMaxDepth: Int { readProcInt("/proc/sys/fs/mqueue/msg_max") ?? 10 }

    /// `/proc/sys/fs/mqueue/msgsize_max`: the largest message size a queue may be created with.
    public static var messageQueueMaxMessageSize: Int { readProcInt("/proc/sys/fs/mqueue/msgsize_max") ?? 8192 }

    /// `/proc/sys/fs/mqueue/queues_max`: queues that may exist at once in this IPC namespace, for
    /// all users together (an unlinked queue still open counts too).
    public static var messageQueueMaxQueues: Int { readProcInt("/proc/sys/fs/mqueue/queues_max") ?? 256 }

    /// Whether this process has CAP_SYS_RESOURCE, which lifts queues_max, msg_max and msgsize_max
    /// (not RLIMIT_MSGQUEUE).
    public static var bypassesQueueLimits: Bool {
        guard let status = readProcText("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 16) else {
            return false
        }
        return mask & (1 << 24) != 0  // CAP_SYS_RESOURCE
    }

    /// RLIMIT_MSGQUEUE (soft): bytes of queue storage this user may hold across all its queues.
    public static var messageQueueByteLimit: Int {
        switch pool_msgqueue_rlimit() {
        case -1: return Int.max
        case -2: return 819_200  // the kernel's default
        case let bytes: return Int(bytes)
        }
    }

    /// What the kernel charges against RLIMIT_MSGQUEUE for one queue (ipc/mqueue.c: the messages,
    /// plus a `struct msg_msg` header and a tree node per message: measured as 96 bytes on this kernel).
    public static func messageQueueCost(depth: Int, messageSize: Int) -> Int {
        depth * (messageSize + 96)
    }

    static func readProcInt(_ path: String) -> Int? {
        guard let text = readProcText(path, limit: 32) else { return nil }
        return Int(text.filter { $0.isNumber })
    }

    static func readProcText(_ path: String, limit: Int = 4096) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: limit)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
