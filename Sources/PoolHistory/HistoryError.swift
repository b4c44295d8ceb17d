#if canImport(Glibc)
import Glibc
#endif

/// Why the job history cannot be used, worded for the operator: the path at fault, the system's
/// reason and what to do.
public struct HistoryError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// A failed system call on `path`, with its errno spelled out.
    static func system(_ what: String, path: String, errno code: Int32, hint: String) -> HistoryError {
        HistoryError("\(what) \(path): \(String(cString: strerror(code))) (errno \(code)); \(hint)")
    }
}
