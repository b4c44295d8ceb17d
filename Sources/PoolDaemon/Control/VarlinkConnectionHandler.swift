import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// One client connection. Calls are answered strictly in order, as varlink requires: a call that
/// arrives while another is still replying (a waiting Run, a followed Status) waits its turn. A
/// `oneway` call gets no reply and is not waited for. A client that half-closes (shuts down its
/// writing side) still gets the replies to every call it sent before; then the connection closes.
///
/// Careless and hostile clients cost a bounded amount:
/// - Who the peer is comes from the kernel (SO_PEERCRED, SO_PEERGROUPS) once, on connect; the
///   connection is counted against the limits, and the methods that change things are checked
///   against the access policy before their parameters are decoded.
/// - The daemon answers no further call while the client has not taken the replies it was sent
///   (the channel is unwritable above the output high-water mark), and reads no further once
///   `maxQueuedCalls` calls or `maxQueuedBytes` bytes of them wait: a client that sends and never
///   reads stalls itself, not the daemon's memory.
/// - A message must arrive whole within the client timeout of its first byte; a client that has
///   replies waiting must make progress within it (take replies, or send more calls while the
///   daemon still reads); a connection with nothing going on is closed after the idle timeout.
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
    private var pendingBytes = 0
    private var active: VarlinkResponder?
    /// True while `processNext` runs, so that calls completing synchronously loop instead of recursing.
    private var draining = false
    /// A read the channel asked for that is held back until the client's queue has room again.
    private var readHeld = false
    /// Since when the bytes received end inside an unfinished message (while the daemon reads).
    private var partialSince: NIODeadline?
    /// Since when the client has left more than the high-water mark of replies untaken and made
    /// no progress (taking replies or sending calls).
    private var unwritableSince: NIODeadline?
    /// The client shut down its writing side: once every call it sent is answered, close.
    private var inputClosed = false
    /// A continuation of `processNext` is scheduled (a burst of calls yields to other connections).
    private var continuationScheduled = false
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
        pendingBytes = 0
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
        let message = Self.unwrapInboundIn(data)
        pendingBytes += message.readableBytes
        pending.append(message)
        partialSince = nil
        noteProgress()
        processNext(context: context)
    }

    /// The client sent something: one that sends while its replies wait is busy, not stuck.
    private func noteProgress() {
        lastActivity = .now()
        if unwritableSince != nil { unwritableSince = lastActivity }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let partial = event as? VarlinkFrameDecoder.PartialMessage {
            if !partial.pending {
                partialSince = nil
            } else if partialSince == nil {
                partialSince = .now()
            }
            noteProgress()
            armTimer(context: context)
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Whole messages have all been passed on; an unfinished one never will be.
            inputClosed = true
            partialSince = nil
            closeIfAnswered(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The channel asks for more bytes (after every read, as autoRead does): granted unless the
    /// calls queued up reach their bounds.
    func read(context: ChannelHandlerContext) {
        if mustHoldReads(context) {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func mustHoldReads(_ context: ChannelHandlerContext) -> Bool {
        pending.count >= settings.maxQueuedCalls || pendingBytes >= settings.maxQueuedBytes
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
        guard !draining, !continuationScheduled else { return }
        draining = true
        defer { draining = false }
        var budget = settings.callsPerTurn
        while active == nil, !closing, context.channel.isWritable, !pending.isEmpty {
            guard budget > 0 else {
                // A long pipeline yields the loop to other connections between bursts.
                continuationScheduled = true
                context.eventLoop.assumeIsolated().execute { [weak self] in
                    self?.continuationScheduled = false
                    self?.processNext(context: context)
                }
                break
            }
            budget -= 1
            let message = pending.removeFirst()
            pendingBytes -= message.readableBytes
            if case .refused(let refusal)? = admission {
                // Over the connection limit: the first call learns why, then the connection closes.
                let responder = VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}
                responder.fail(refusal)
                close(context: context)
                return
            }
            let header: VarlinkCallHeader, tree: JSONValue?
            do throws(PoolError) {
                (header, tree) = try VarlinkCallDecoding.call(of: message, decoder: decoder)
            } catch {
                VarlinkResponder(context: context, encoder: encoder, more: false, oneway: false) {}.fail(error)
                continue
            }
            // A oneway call is not waited for: the next call starts at once, and nothing the call
            // leaves running (a job) keeps the connection busy.
            let oneway = header.oneway ?? false
            let responder = VarlinkResponder(
                context: context, encoder: encoder, more: (header.more ?? false) && !oneway, oneway: oneway
            ) { [weak self] in
                guard !oneway else { return }
                self?.active = nil
                self?.lastActivity = .now()
                self?.processNext(context: context)
            }
            if !oneway { active = responder }
            if let peer, let refusal = server.policy.refusal(method: header.method, peer: peer) {
                server.logger.notice("permission denied", metadata: ["method": "\(header.method)", "peer": "\(peer)"])
                responder.fail(refusal)
                continue
            }
            server.controller.serve(call: header, message: message, tree: tree, decoder: decoder, responder: responder)
        }
        resumeReadingIfPossible(context: context)
        closeIfAnswered(context: context)
        armTimer(context: context)
    }

    /// After a half-close: closes once the last call has its reply and the client has taken it
    /// (a close drops what is still buffered).
    private func closeIfAnswered(context: ChannelHandlerContext) {
        guard inputClosed, active == nil, pending.isEmpty, !closing else { return }
        closing = true
        timer?.cancel()
        timer = nil
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        // A client that never takes those replies is closed all the same.
        context.eventLoop.assumeIsolated().scheduleTask(in: timeAmount(settings.clientTimeout)) {
            context.close(promise: nil)
        }
    }

    // MARK: Timeouts

    /// The earliest moment something may have to be closed; nil when nothing is being timed.
    private func nextDeadline(context: ChannelHandlerContext) -> NIODeadline? {
        // Worked out on every call: a running minimum, not an array to take the minimum of.
        var earliest: NIODeadline?
        func consider(_ deadline: NIODeadline) {
            if earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
        }
        if let unwritableSince { consider(unwritableSince + timeAmount(settings.clientTimeout)) }
        if let partialSince, !readHeld { consider(partialSince + timeAmount(settings.clientTimeout)) }
        if isIdle {
            // A refused connection has nothing to wait for but its first call.
            let limit = isRefused ? settings.clientTimeout : settings.idleTimeout
            consider(lastActivity + timeAmount(limit))
        }
        return earliest
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
