import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// One client connection. Calls are answered strictly in order, as varlink requires: a call that
/// arrives while another is still replying (a waiting Run, a followed Status) waits its turn.
final class VarlinkConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let controller: PoolController
    private let decoder = JSONDecoder()
    private let encoder = JSONEncoder()
    private var pending: [ByteBuffer] = []
    private var active: VarlinkResponder?
    /// True while `processNext` runs, so that calls completing synchronously loop instead of recursing.
    private var draining = false

    init(controller: PoolController) {
        self.controller = controller
        encoder.outputFormatting = [.withoutEscapingSlashes]
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending.append(Self.unwrapInboundIn(data))
        processNext(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending.removeAll()
        active?.connectionClosed()
        active = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tooLarge = error as? VarlinkFrameDecoder.MessageTooLarge {
            let responder = VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}
            responder.fail(.invalidRequest("message larger than \(tooLarge.limit) bytes without a NUL terminator; closing the connection"))
        }
        context.close(promise: nil)
    }

    private func processNext(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while active == nil, !pending.isEmpty {
            let message = pending.removeFirst()
            let header: VarlinkCallHeader
            do {
                header = try decoder.decode(VarlinkCallHeader.self, from: message)
            } catch {
                let responder = VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}
                responder.fail(.invalidRequest("not a varlink call (a JSON object with a \"method\" string, terminated by NUL): \(Self.explain(error))"))
                continue
            }
            let responder = VarlinkResponder(
                context: context, encoder: encoder, more: header.more ?? false, oneway: header.oneway ?? false
            ) { [weak self] in
                self?.active = nil
                self?.processNext(context: context)
            }
            active = responder
            controller.handle(call: header, message: message, decoder: decoder, responder: responder)
        }
    }

    static func explain(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case DecodingError.keyNotFound(let key, _):
            return "missing \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
