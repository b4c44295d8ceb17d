#if canImport(Glibc)
import Glibc
#endif

/// A failed system call on an IPC object, with what was being done and the errno behind it.
public struct IPCError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32
    /// What the caller can do about it, when the errno alone does not say (limits, permissions).
    public let hint: String?

    public init(_ operation: String, errno: Int32 = Glibc.errno, hint: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let hint { return "\(operation): \(reason) (\(hint))" }
        return "\(operation): \(reason)"
    }
}
