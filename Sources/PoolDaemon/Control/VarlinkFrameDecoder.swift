import NIOCore

/// Splits the byte stream into varlink messages at their NUL terminators. A message that grows past
/// `maxMessageSize` without a terminator is refused before it is buffered whole: from then on the
/// framing cannot be trusted, so the connection is closed after an error reply.
struct VarlinkFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct MessageTooLarge: Error {
        let limit: Int
    }

    let maxMessageSize: Int
    /// Bytes already searched for a NUL, so that a message arriving in many reads is scanned once.
    private var scanned = 0

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let terminator = view.dropFirst(scanned).firstIndex(of: 0) else {
            scanned = view.count
            if view.count > maxMessageSize { throw MessageTooLarge(limit: maxMessageSize) }
            return .needMoreData
        }
        scanned = 0
        let length = terminator - view.startIndex
        guard length <= maxMessageSize else { throw MessageTooLarge(limit: maxMessageSize) }
        let message = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // An unterminated tail at EOF is not a message; drop it.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
