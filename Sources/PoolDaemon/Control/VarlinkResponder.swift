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

    /// Sends a reply; the call is over unless `continues` (which needs `more`).
    func reply(_ parameters: some Encodable & Sendable, continues: Bool = false) {
        guard !isDone else { return }
        let continuing = continues && more
        if !oneway, !isClosed {
            write(VarlinkReply(parameters: parameters, continues: continuing ? true : nil))
        }
        if !continuing { done() }
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
        do {
            var buffer = try encoder.encodeAsByteBuffer(reply, allocator: context.channel.allocator)
            buffer.writeInteger(UInt8(0))
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}
