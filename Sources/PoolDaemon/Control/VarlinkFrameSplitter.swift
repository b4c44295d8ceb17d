import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into varlink messages at their NUL terminators. A message that grows past
/// `maxMessageSize` without a terminator is refused as soon as that many bytes have arrived, before
/// it is buffered whole. Free of any channel, so that the fuzz tests can drive it directly with
/// arbitrary bytes split at arbitrary points.
public struct VarlinkFrameSplitter: Sendable {
    public struct MessageTooLarge: Error, Equatable, Sendable {
        public let limit: Int
    }

    public let maxMessageSize: Int
    /// Bytes of the current partial message already searched for a NUL, so that a message arriving
    /// in many reads is scanned once.
    private var scanned = 0

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// The next whole message at the front of `buffer`, consumed with its terminator; nil when the
    /// buffer holds no terminator yet (only the start of a message, or nothing).
    public mutating func next(from buffer: inout ByteBuffer) throws(MessageTooLarge) -> ByteBuffer? {
        let available = buffer.readableBytes
        let from = min(scanned, available)
        // memchr: a byte-wise search through the view cost more than the rest of a Status call's parse.
        let terminator: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, let found = memchr(base + from, 0, available - from) else { return nil }
            return base.distance(to: UnsafeRawPointer(found))
        }
        guard let length = terminator else {
            scanned = available
            if available > maxMessageSize { throw MessageTooLarge(limit: maxMessageSize) }
            return nil
        }
        scanned = 0
        guard length <= maxMessageSize else { throw MessageTooLarge(limit: maxMessageSize) }
        let message = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        return message
    }
}
