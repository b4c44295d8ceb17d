import NIOCore

/// The frame splitter in a channel pipeline. Besides the messages it passes on whether the bytes
/// received so far end inside a message (`PartialMessage`), which the connection handler times: a
/// client that trickles a message in (a byte a minute) must not hold a connection for ever.
/// A message over the size limit is an error (`MessageTooLarge`): from then on the framing cannot
/// be trusted, so the connection handler replies once and closes.
struct VarlinkFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    /// Sent down the pipeline whenever the decoder has consumed what it can: `true` when bytes of
    /// an unfinished message remain.
    struct PartialMessage {
        let pending: Bool
    }

    private var splitter: VarlinkFrameSplitter

    init(maxMessageSize: Int) {
        splitter = VarlinkFrameSplitter(maxMessageSize: maxMessageSize)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let message = try splitter.next(from: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(message))
            return .continue
        }
        context.fireUserInboundEventTriggered(PartialMessage(pending: buffer.readableBytes > 0))
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Whole messages were passed on as they arrived; an unterminated tail at EOF is not a
        // message: dropped.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
