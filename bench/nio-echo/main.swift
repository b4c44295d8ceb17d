// nio-echo: bench/c/echo.c on SwiftNIO, the floor of any NIO server's round trip here.
//
//   nio-echo SOCKET         serve on SOCKET until SIGTERM or SIGINT
//
// One event loop; each NUL-terminated message a client sends is answered at once with the C
// echo's reply (Status-sized, padded with spaces, NUL-terminated): no parsing, no encoding, one
// handler on the channel. Prints `ready socket=SOCKET pid=PID` once it accepts clients; removes
// the socket on exit. What `Status` costs beyond this is poold's own; what this costs beyond the
// C echo is NIO's (its pipeline, buffers and event loop).
import Foundation
import NIOCore
import NIOPosix

final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var pending = ByteBuffer()
    private let reply: ByteBuffer

    init(reply: ByteBuffer) { self.reply = reply }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        while let end = pending.readableBytesView.firstIndex(of: 0) {
            pending.moveReaderIndex(to: end + 1)
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        }
        pending.discardReadBytes()
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: nio-echo SOCKET\n".utf8))
    exit(2)
}
let path = arguments[1]
var text = "{\"parameters\":{\"pid\":\(getpid()),\"version\":\"0\",\"poolSize\":1,\"workers\":[{\"slot\":0,\"state\":\"ready\"}]}}"
text += String(repeating: " ", count: max(0, 400 - text.utf8.count))
var replyBytes = ByteBuffer(string: text)
replyBytes.writeInteger(UInt8(0))
let reply = replyBytes

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 64)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo(reply: reply)) }
    }
    .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()

let stop = DispatchSemaphore(value: 0)
var sources: [any DispatchSourceSignal] = []
for number in [SIGTERM, SIGINT] {
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number)
    source.setEventHandler { stop.signal() }
    source.resume()
    sources.append(source)
}
FileHandle.standardOutput.write(Data("ready socket=\(path) pid=\(getpid())\n".utf8))
stop.wait()
try server.close().wait()
unlink(path)
try group.syncShutdownGracefully()
