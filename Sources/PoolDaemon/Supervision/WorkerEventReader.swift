import NIOCore
import PoolIPC

/// On the event loop, the workers' doorbell: when it is rung, takes every event waiting on the
/// workers' queue and hands them over in order. What is read from the eventfd is only the wake-up.
/// The queue is read once per wake-up, after NIO has read the eventfd, so a burst of rings costs
/// one pass.
final class WorkerEventReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let events: MessageQueue
    private let deliver: ([WatchedEvent]) -> Void
    private var batch: [WatchedEvent] = []
    private var rung = false

    init(events: MessageQueue, deliver: @escaping ([WatchedEvent]) -> Void) {
        self.events = events
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        rung = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard rung else { return }
        rung = false
        while let event = try? events.receive(WorkerEvent.self) { batch.append(.worker(event)) }
        guard !batch.isEmpty else { return }
        let taken = batch
        batch.removeAll(keepingCapacity: true)
        deliver(taken)
    }
}
