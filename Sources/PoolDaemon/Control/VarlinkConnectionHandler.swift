import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// One client connection. Calls are answered strictly in order, as varlink requires: a call that
/// arrives while another is still replying (a waiting Run, a followed Status) waits its turn.
///
/// Careless and hostile clients cost a bounded amount:
/// - Who the peer is comes from the kernel (SO_PEERCRED, SO_PEERGROUPS) once, on connect; the
///   connection is counted against the limits, and the methods that change things are checked
///   against the access policy before their parameters are decoded.
/// - The daemon reads no further while `maxQueuedCalls` calls wait or while the client has not
///   taken the replies it was sent (the channel is unwritable above the output high-water mark):
///   a client that sends and never reads stalls itself, not the daemon's memory.
/// - A message must arrive whole within the client timeout of its first byte, and replies must be
///   taken within it; a connection with nothing going on is closed after the idle timeout.
final class VarlinkConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ControlServer
    private var settings: ControlSocketSettings { server.settings }
    private let decoder = JSONDecoder()
    private let encoder = JSONEncoder()
    private var peer: PeerCredentials?
    private var admission: ConnectionLimiter.Admission?
    private var pending = CircularBuffer<ByteBuffer>()
    private var active: VarlinkResponder?
    /// True while `processNext` runs, so that calls completing synchronously loop instead of recursing.
    private var draining = false
    /// A read the channel asked for that is held back until the client's queue has room again.
    private var readHeld = false
    /// Since when the bytes received end inside an unfinished message (while the daemon reads).
    private var partialSince: NIODeadline?
    /// Since when the client has left more than the high-water mark of replies untaken.
    private var unwritableSince: NIODeadline?
    private var lastActivity = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var closing = false

    init(server: ControlServer) {
        self.server = server
        encoder.outputFormatting = [.withoutEscapingSlashes]
    }

    // MARK: Connection lifecycle

    func channelActive(context: ChannelHandlerContext) {
        let credentials: PeerCredentials
        do {
            credentials = try PeerCredentials.of(context.channel)
        } catch {
            server.logger.warning("control connection closed: cannot tell who the peer is: \(error)")
            context.close(promise: nil)
            return
        }
        peer = credentials
        let admission = server.limiter.admit(uid: credentials.uid)
        self.admission = admission
        switch admission {
        case .admitted:
            break
        case .refused(let refusal):
            server.logger.notice("control connection over the limit; refusing its first call",
                                 metadata: ["peer": "\(credentials)", "reason": "\(refusal.parameters.reason ?? "")"])
        case .dropped:
            server.logger.warning("control connection dropped: too many connections, and too many refusals pending",
                                  metadata: ["peer": "\(credentials)"])
            context.close(promise: nil)
        }
        lastActivity = .now()
        armTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch admission {
        case .admitted?: server.limiter.release(uid: peer!.uid)
        case .refused?: server.limiter.releaseRefused()
        case .dropped?, nil: break
        }
        admission = nil
        timer?.cancel()
        timer = nil
        pending.removeAll()
        active?.connectionClosed()
        active = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tooLarge = error as? VarlinkFrameSplitter.MessageTooLarge {
            let responder = VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}
            responder.fail(.invalidRequest("message larger than \(tooLarge.limit) bytes without a NUL terminator; closing the connection"))
        }
        close(context: context)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        pending.append(Self.unwrapInboundIn(data))
        partialSince = nil
        lastActivity = .now()
        processNext(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let partial = event as? VarlinkFrameDecoder.PartialMessage {
            if !partial.pending {
                partialSince = nil
            } else if partialSince == nil {
                partialSince = .now()
            }
            armTimer(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The channel asks for more bytes (after every read, as autoRead does): granted unless calls
    /// are queued up or replies are waiting for the client to take them.
    func read(context: ChannelHandlerContext) {
        if mustHoldReads(context) {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func mustHoldReads(_ context: ChannelHandlerContext) -> Bool {
        pending.count >= settings.maxQueuedCalls || !context.channel.isWritable
    }

    private func resumeReadingIfPossible(context: ChannelHandlerContext) {
        guard readHeld, !closing, !mustHoldReads(context) else { return }
        readHeld = false
        // The client could not send while the daemon was not reading: its message's time starts now.
        if partialSince != nil { partialSince = .now() }
        context.read()
    }

    // MARK: Writing

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
            active?.flushDeferred()
            processNext(context: context)
            resumeReadingIfPossible(context: context)
        } else if unwritableSince == nil {
            unwritableSince = .now()
        }
        armTimer(context: context)
        context.fireChannelWritabilityChanged()
    }

    // MARK: Calls

    private func processNext(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while active == nil, !closing, context.channel.isWritable, let message = pending.popFirst() {
            if case .refused(let refusal)? = admission {
                // Over the connection limit: the first call learns why, then the connection closes.
                let responder = VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}
                responder.fail(refusal)
                close(context: context)
                return
            }
            let header: VarlinkCallHeader
            do throws(PoolError) {
                header = try VarlinkCallDecoding.header(of: message, decoder: decoder)
            } catch {
                VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}.fail(error)
                continue
            }
            let responder = VarlinkResponder(
                context: context, encoder: encoder, more: header.more ?? false, oneway: header.oneway ?? false
            ) { [weak self] in
                self?.active = nil
                self?.lastActivity = .now()
                self?.processNext(context: context)
            }
            active = responder
            if let peer, let refusal = server.policy.refusal(method: header.method, peer: peer) {
                server.logger.notice("permission denied", metadata: ["method": "\(header.method)", "peer": "\(peer)"])
                responder.fail(refusal)
                continue
            }
            server.controller.handle(call: header, message: message, decoder: decoder, responder: responder)
        }
        resumeReadingIfPossible(context: context)
        armTimer(context: context)
    }

    // MARK: Timeouts

    /// The earliest moment something may have to be closed; nil when nothing is being timed.
    private func nextDeadline(context: ChannelHandlerContext) -> NIODeadline? {
        var deadlines: [NIODeadline] = []
        if let unwritableSince { deadlines.append(unwritableSince + timeAmount(settings.clientTimeout)) }
        if let partialSince, !readHeld { deadlines.append(partialSince + timeAmount(settings.clientTimeout)) }
        if isIdle {
            // A refused connection has nothing to wait for but its first call.
            let limit = isRefused ? settings.clientTimeout : settings.idleTimeout
            deadlines.append(lastActivity + timeAmount(limit))
        }
        return deadlines.min()
    }

    private var isIdle: Bool { active == nil && pending.isEmpty && partialSince == nil && unwritableSince == nil }

    private var isRefused: Bool {
        if case .refused? = admission { return true }
        return false
    }

    /// Makes sure a timer fires by the next deadline. A timer that fires early (the deadline moved
    /// on because the client made progress) only looks again.
    private func armTimer(context: ChannelHandlerContext) {
        guard !closing, let deadline = nextDeadline(context: context) else { return }
        if let scheduled = timerDeadline, scheduled <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        guard !closing else { return }
        let now = NIODeadline.now()
        let timeout = settings.clientTimeout
        var reason: String?
        if let unwritableSince, now - unwritableSince >= timeAmount(timeout) {
            reason = "its replies were not taken within \(DurationText.format(nanoseconds(timeout))) (a client that sends calls but does not read)"
        } else if let partialSince, !readHeld, now - partialSince >= timeAmount(timeout) {
            reason = "a message was not completed within \(DurationText.format(nanoseconds(timeout))) of its first byte (--client-timeout)"
        } else if isIdle {
            let limit = isRefused ? timeout : settings.idleTimeout
            if now - lastActivity >= timeAmount(limit) {
                reason = isRefused ? "over the connection limit and no call within \(DurationText.format(nanoseconds(limit)))" : "idle for \(DurationText.format(nanoseconds(limit))) (--idle-timeout)"
            }
        }
        guard let reason else {
            armTimer(context: context)
            return
        }
        server.logger.info("control connection closed: \(reason)", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")"])
        close(context: context)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        timer?.cancel()
        timer = nil
        context.close(promise: nil)
    }
}
