import Foundation
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// The reply side of one varlink call. Lives on the event loop. Knows whether the caller asked for
/// `more` (several replies) or `oneway` (none), and tells the connection when the call is over so
/// that the next pipelined call may start.
final class VarlinkResponder {
    let more: Bool
    let oneway: Bool
    private let context: ChannelHandlerContext
    private let encoder: JSONEncoder
    private let onDone: () -> Void
    private(set) var isDone = false
    private(set) var isClosed = false
    /// Cleanup for calls that register watchers (Run, Status with more).
    var onClose: (() -> Void)?

    init(context: ChannelHandlerContext, encoder: JSONEncoder, more: Bool, oneway: Bool, onDone: @escaping () -> Void) {
        self.context = context
        self.encoder = encoder
        self.more = more
        self.oneway = oneway
        self.onDone = onDone
    }

    /// A continuing reply held back while the client has not taken earlier ones (the channel is
    /// unwritable): only the newest is kept, so a follower that reads slowly gets the current state
    /// when it reads again, and the daemon never queues an unbounded backlog of states for it.
    private var deferred: ByteBuffer?

    /// Sends a reply; the call is over unless `continues` (which needs `more`).
    func reply(_ parameters: some Encodable & Sendable, continues: Bool = false) {
        send(continues: continues) { continuing in
            encode(VarlinkReply(parameters: parameters, continues: continuing ? true : nil))
        }
    }

    /// Sends a job's record (a `JobReply`): what Run, GetJob and their followers get.
    func reply(job record: JobRecord, continues: Bool = false) {
        send(continues: continues) { continuing in
            do {
                return try JSONStreamEncoder.jobReply(record, continues: continuing, allocator: context.channel.allocator)
            } catch {
                // A number JSON cannot hold, as `encode` has it.
                context.close(promise: nil)
                return nil
            }
        }
    }

    /// Sends a reply whose parameters are JSON text already (`JSONStreamEncoder`'s of a value):
    /// the same bytes as `reply` of that value.
    func reply(parametersText text: ByteBuffer, continues: Bool = false) {
        send(continues: continues) { continuing in
            var buffer = context.channel.allocator.buffer(capacity: text.readableBytes + 32)
            buffer.writeStaticString("{\"parameters\":")
            buffer.writeImmutableBuffer(text)
            if continuing { buffer.writeStaticString(",\"continues\":true") }
            buffer.writeStaticString("}\u{0}")
            return buffer
        }
    }

    /// Sends the reply `message` makes (told whether it continues), or holds it back.
    private func send(continues: Bool, _ message: (_ continuing: Bool) -> ByteBuffer?) {
        guard !isDone else { return }
        let continuing = continues && more
        if !oneway, !isClosed {
            if continuing, !context.channel.isWritable {
                deferred = message(true)
            } else {
                // Whatever was held back is superseded by this newer reply.
                deferred = nil
                if let buffer = message(continuing) { context.writeAndFlush(NIOAny(buffer), promise: nil) }
            }
        }
        if !continuing { done() }
    }

    /// The client has taken its replies: send the one held back, if any.
    func flushDeferred() {
        guard let buffer = deferred, !isClosed else { return }
        deferred = nil
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    func fail(_ error: PoolError) {
        guard !isDone else { return }
        if !oneway, !isClosed {
            write(VarlinkReply(parameters: error.parameters, error: error.name))
        }
        done()
    }

    /// The connection went away: watchers are dropped and the call ends without a reply.
    func connectionClosed() {
        isClosed = true
        deferred = nil
        onClose?()
        onClose = nil
        isDone = true
    }

    private func done() {
        isDone = true
        onClose?()
        onClose = nil
        onDone()
    }

    private func write<P: Encodable & Sendable>(_ reply: VarlinkReply<P>) {
        guard let buffer = encode(reply) else { return }
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    private func encode<P: Encodable & Sendable>(_ reply: VarlinkReply<P>) -> ByteBuffer? {
        do {
            let allocator = context.channel.allocator
            var buffer = try JSONStreamEncoder.encode(reply, allocator: allocator) ?? encoder.encodeAsByteBuffer(reply, allocator: allocator)
            buffer.writeInteger(UInt8(0))
            return buffer
        } catch {
            context.close(promise: nil)
            return nil
        }
    }
}
