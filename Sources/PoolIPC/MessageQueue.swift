import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX message queue descriptor (`mq_open`). Sending and receiving block in the kernel; neither
/// allocates. The descriptor is closed explicitly (`close()`), the name removed with `unlink(name:)`,
/// so that ownership stays visible at the call sites.
public struct MessageQueue: Sendable {
    public let name: String
    /// The queue descriptor; on Linux it is a file descriptor, so it can be polled.
    public let descriptor: Int32
    public let messageSize: Int
    public let depth: Int

    /// Creates a new queue; fails if one by that name exists, so that instances never share a queue
    /// by accident.
    public static func create(
        name: String, depth: Int, messageSize: Int, nonBlocking: Bool = false
    ) throws(IPCError) -> MessageQueue {
        let flags = O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)
        let fd = pool_mq_open(name, flags, 0o600, depth, messageSize)
        guard fd >= 0 else {
            let error = Glibc.errno
            throw IPCError("mq_open(\(name), depth \(depth), message size \(messageSize))", errno: error,
                           hint: limitHint(errno: error, depth: depth, messageSize: messageSize))
        }
        return try MessageQueue(name: name, descriptor: fd)
    }

    /// Opens an existing queue.
    public static func open(name: String, nonBlocking: Bool = false) throws(IPCError) -> MessageQueue {
        let fd = pool_mq_open(name, O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0), 0, 0, 0)
        guard fd >= 0 else { throw IPCError("mq_open(\(name))") }
        return try MessageQueue(name: name, descriptor: fd)
    }

    private init(name: String, descriptor: Int32) throws(IPCError) {
        var flags = 0, maxmsg = 0, msgsize = 0, current = 0
        guard pool_mq_getattr(descriptor, &flags, &maxmsg, &msgsize, &current) == 0 else {
            let error = IPCError("mq_getattr(\(name))")
            _ = pool_mq_close(descriptor)
            throw error
        }
        self.name = name
        self.descriptor = descriptor
        self.depth = maxmsg
        self.messageSize = msgsize
    }

    /// Messages waiting in the queue now.
    public var currentDepth: Int {
        var flags = 0, maxmsg = 0, msgsize = 0, current = 0
        return pool_mq_getattr(descriptor, &flags, &maxmsg, &msgsize, &current) == 0 ? current : 0
    }

    /// Sends raw bytes; blocks while the queue is full (unless opened non-blocking: then EAGAIN).
    @inlinable
    public func send(_ bytes: UnsafeRawBufferPointer, priority: UInt32 = 0) throws(IPCError) {
        while pool_mq_send(descriptor, bytes.baseAddress, bytes.count, priority) != 0 {
            if errno != EINTR { throw IPCError("mq_send(\(name))") }
        }
    }

    /// Sends raw bytes on a non-blocking queue; false when it is full. A full queue is no error: the
    /// producer's hot loop meets it often, and an error's message is an allocation.
    @inlinable
    public func trySend(_ bytes: UnsafeRawBufferPointer, priority: UInt32 = 0) throws(IPCError) -> Bool {
        while pool_mq_send(descriptor, bytes.baseAddress, bytes.count, priority) != 0 {
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            default: throw IPCError("mq_send(\(name))")
            }
        }
        return true
    }

    /// Sends a plain value as one message.
    @inlinable
    public func send<Message: BitwiseCopyable>(_ message: Message, priority: UInt32 = 0) throws(IPCError) {
        var copy = message
        try withUnsafeBytes(of: &copy) { (bytes) throws(IPCError) in try send(bytes, priority: priority) }
    }

    /// Sends, waiting at most until `deadlineRealtimeNanos` (CLOCK_REALTIME). Returns false on timeout.
    public func send<Message: BitwiseCopyable>(_ message: Message, deadlineRealtimeNanos: Int64) throws(IPCError) -> Bool {
        var copy = message
        while true {
            let rc = withUnsafeBytes(of: &copy) {
                pool_mq_timedsend(descriptor, $0.baseAddress, $0.count, deadlineRealtimeNanos)
            }
            if rc == 0 { return true }
            switch errno {
            case EINTR: continue
            case ETIMEDOUT: return false
            default: throw IPCError("mq_timedsend(\(name))")
            }
        }
    }

    /// Receives one message into `buffer` (which must hold `messageSize` bytes); returns its length,
    /// or nil when the queue is non-blocking and empty.
    @inlinable
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(IPCError) -> Int? {
        while true {
            let count = pool_mq_receive(descriptor, buffer.baseAddress, buffer.count, nil)
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw IPCError("mq_receive(\(name))")
            }
        }
    }

    /// Receives one message of a plain type; nil when non-blocking and empty. Messages of another size
    /// are an error: every queue carries one message type.
    public func receive<Message: BitwiseCopyable>(_ type: Message.Type) throws(IPCError) -> Message? {
        try withUnsafeTemporaryAllocation(byteCount: messageSize, alignment: 16) { (buffer) throws(IPCError) -> Message? in
            guard let count = try receive(into: buffer) else { return nil }
            guard count == MemoryLayout<Message>.size else {
                throw IPCError("mq_receive(\(name)): a \(count)-byte message where \(MemoryLayout<Message>.size) were expected", errno: EBADMSG)
            }
            return buffer.loadUnaligned(as: Message.self)
        }
    }

    /// Receives, waiting at most until `deadlineRealtimeNanos` (CLOCK_REALTIME); nil on timeout.
    public func receive<Message: BitwiseCopyable>(_ type: Message.Type, deadlineRealtimeNanos: Int64) throws(IPCError) -> Message? {
        try withUnsafeTemporaryAllocation(byteCount: messageSize, alignment: 16) { (buffer) throws(IPCError) -> Message? in
            while true {
                let count = pool_mq_timedreceive(descriptor, buffer.baseAddress, buffer.count, deadlineRealtimeNanos)
                if count >= 0 {
                    guard count == MemoryLayout<Message>.size else {
                        throw IPCError("mq_timedreceive(\(name)): unexpected \(count)-byte message", errno: EBADMSG)
                    }
                    return buffer.loadUnaligned(as: Message.self)
                }
                switch errno {
                case EINTR: continue
                case ETIMEDOUT, EAGAIN: return nil
                default: throw IPCError("mq_timedreceive(\(name))")
                }
            }
        }
    }

    /// Sends raw bytes, waiting at most until `deadlineRealtimeNanos` (CLOCK_REALTIME): true when
    /// sent, false on timeout.
    public func send(_ bytes: UnsafeRawBufferPointer, deadlineRealtimeNanos: Int64) -> Result<Bool, IPCError> {
        while true {
            if pool_mq_timedsend(descriptor, bytes.baseAddress, bytes.count, deadlineRealtimeNanos) == 0 { return .success(true) }
            switch errno {
            case EINTR: continue
            case ETIMEDOUT: return .success(false)
            default: return .failure(IPCError("mq_timedsend(\(name))"))
            }
        }
    }

    /// Receives into `buffer` (at least `messageSize` bytes), waiting at most until
    /// `deadlineRealtimeNanos`: true when a message arrived, false on timeout.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadlineRealtimeNanos: Int64) -> Result<Bool, IPCError> {
        while true {
            if pool_mq_timedreceive(descriptor, buffer.baseAddress, buffer.count, deadlineRealtimeNanos) >= 0 { return .success(true) }
            switch errno {
            case EINTR: continue
            case ETIMEDOUT, EAGAIN: return .success(false)
            default: return .failure(IPCError("mq_timedreceive(\(name))"))
            }
        }
    }

    public func close() {
        _ = pool_mq_close(descriptor)
    }

    /// Removes the name; processes that have the queue open keep using it until they close it.
    /// Returns false if there was no such queue.
    @discardableResult
    public static func unlink(name: String) -> Bool {
        pool_mq_unlink(name) == 0
    }

    /// Explains a failed mq_open in terms of the limits a user can change.
    static func limitHint(errno: Int32, depth: Int, messageSize: Int) -> String? {
        switch errno {
        case EINVAL:
            let maxDepth = SystemLimits.messageQueueMaxDepth
            let maxSize = SystemLimits.messageQueueMaxMessageSize
            if depth > maxDepth {
                return "depth \(depth) is above /proc/sys/fs/mqueue/msg_max = \(maxDepth); raise it with sysctl fs.mqueue.msg_max=\(depth) or ask for less"
            }
            if messageSize > maxSize {
                return "message size \(messageSize) is above /proc/sys/fs/mqueue/msgsize_max = \(maxSize); raise it with sysctl fs.mqueue.msgsize_max=\(messageSize) or send smaller messages"
            }
            return "depth and message size must be at least 1"
        case EMFILE, ENOMEM:
            let limit = SystemLimits.messageQueueByteLimit
            let cost = SystemLimits.messageQueueCost(depth: depth, messageSize: messageSize)
            return "RLIMIT_MSGQUEUE is \(limit) bytes for this user and this queue needs about \(cost); other queues of this user count too (ulimit -q, or LimitMSGQUEUE= under systemd)"
        case ENOSPC:
            let maxQueues = SystemLimits.messageQueueMaxQueues
            return "this IPC namespace has /proc/sys/fs/mqueue/queues_max = \(maxQueues) queues already, all users' together (unlinked queues still open count too); raise it with sysctl fs.mqueue.queues_max=\(maxQueues * 2) or run fewer workers and prodcons jobs"
        case EEXIST:
            return "a queue of that name exists already; another instance may be using this prefix"
        case EACCES:
            return "permission denied on the mqueue filesystem"
        default:
            return nil
        }
    }
}
