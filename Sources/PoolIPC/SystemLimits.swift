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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return Int(text.filter { $0.isNumber })
    }
}
