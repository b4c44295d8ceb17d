import NIOCore
import PoolIPC

/// On the event loop, the workers' doorbell: when it is rung, takes the events waiting on the
/// workers' queue and hands them over in order. The queue is read once per wake-up, after NIO has
/// read the eventfd, so a burst of rings costs one pass; and it is read as many times as the
/// eventfd's count says, one ring per event sent, so that the pass does not end in a receive that
/// finds the queue empty. (A worker sends, then rings: an event whose ring has not come yet is
/// taken with its ring's wake-up, and one the watcher took first leaves a ring that finds nothing.)
final class WorkerEventReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let events: MessageQueue
    private let deliver: ([WatchedEvent]) -> Void
    private var batch: [WatchedEvent] = []
    /// Rings counted since the last pass.
    private var rings: UInt64 = 0

    init(events: MessageQueue, deliver: @escaping ([WatchedEvent]) -> Void) {
        self.events = events
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var count = unwrapInboundIn(data)
        // An eventfd reads as its 8-byte count; anything else still means a ring.
        rings &+= count.readInteger(endianness: .host, as: UInt64.self) ?? 1
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard rings > 0 else { return }
        var left = rings
        rings = 0
        while left > 0, let event = try? events.receive(WorkerEvent.self) {
            batch.append(.worker(event))
            left -= 1
        }
        guard !batch.isEmpty else { return }
        let taken = batch
        batch.removeAll(keepingCapacity: true)
        deliver(taken)
    }
}
