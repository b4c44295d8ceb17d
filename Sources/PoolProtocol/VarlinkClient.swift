import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a call did not produce a reply.
public enum VarlinkClientError: Error, CustomStringConvertible, Sendable {
    /// Nothing accepts connections at the path: `errno` from socket or connect (0: a path that
    /// cannot be one), so that a caller can say why.
    case unreachable(path: String, reason: String, errno: Int32)
    /// The connection broke or closed before the reply was complete.
    case connectionLost(String)
    /// The server sent something that is not a varlink reply.
    case malformedReply(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason, _): return "cannot connect to \(path): \(reason)"
        case .connectionLost(let reason): return "connection lost: \(reason)"
        case .malformedReply(let reason): return "malformed reply: \(reason)"
        }
    }
}

/// A blocking varlink client over a Unix stream socket: one connection, calls made one at a time.
/// Blocking keeps `poolctl` small and quick to start; the daemon side is asynchronous (NIO).
public final class VarlinkClient {
    public let socketPath: String
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()
    /// Watched while a call waits for its reply: each byte that arrives on `descriptor` (a signal
    /// handler's pipe) runs `onInterrupt` in the program's ordinary flow, then the wait goes on.
    public var interruption: (descriptor: Int32, onInterrupt: () -> Void)?

    public init(socketPath: String, timeoutSeconds: Int? = nil) throws(VarlinkClientError) {
        self.socketPath = socketPath
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else {
            throw .unreachable(path: socketPath, reason: "the path is longer than \(capacity - 1) bytes, the limit for a Unix socket", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: socketPath.utf8)
            raw[socketPath.utf8.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(path: socketPath, reason: String(cString: strerror(errno)), errno: errno) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw .unreachable(path: socketPath, reason: String(cString: strerror(error)), errno: error)
        }
        if let timeoutSeconds {
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        self.descriptor = fd
    }

    deinit {
        close(descriptor)
    }

    /// Calls `method` and returns its single reply (an error reply is returned, not thrown).
    public func call(_ method: String, _ parameters: some Encodable & Sendable = NoParameters()) throws -> VarlinkReply<JSONValue> {
        try send(VarlinkCall(method: method, parameters: parameters))
        return try readReply()
    }

    /// Calls `method` with `more` and hands every reply to `onReply` until one arrives without
    /// `continues` or `onReply` returns false.
    public func stream(
        _ method: String, _ parameters: some Encodable & Sendable,
        onReply: (VarlinkReply<JSONValue>) throws -> Bool
    ) throws {
        try send(VarlinkCall(method: method, parameters: parameters, more: true))
        while true {
            let reply = try readReply()
            guard try onReply(reply), reply.continues == true else { return }
        }
    }

    /// Calls `method` and decodes its reply as `Reply`; an error reply is thrown as `PoolError`.
    public func call<Reply: Decodable>(_ method: String, _ parameters: some Encodable & Sendable = NoParameters(),
                                       returning: Reply.Type) throws -> Reply {
        let reply = try call(method, parameters)
        return try Self.decode(reply, as: Reply.self)
    }

    /// Turns a reply into `Reply`, or throws its error.
    public static func decode<Reply: Decodable>(_ reply: VarlinkReply<JSONValue>, as type: Reply.Type) throws -> Reply {
        if let error = reply.error {
            throw PoolError(name: error, parameters: errorParameters(reply.parameters))
        }
        return try (reply.parameters ?? .object([:])).decode(Reply.self)
    }

    /// An error's parameters; field by field when they do not decode whole (an `id` no Int holds, as
    /// in a NotFound for the id a user typed), so that the reason is never lost.
    static func errorParameters(_ value: JSONValue?) -> PoolError.Parameters {
        guard let value else { return PoolError.Parameters() }
        if let whole = try? value.decode(PoolError.Parameters.self) { return whole }
        return PoolError.Parameters(
            reason: value["reason"]?.stringValue, parameter: value["parameter"]?.stringValue, id: value["id"]?.intValue,
            requested: value["requested"]?.intValue, poolSize: value["poolSize"]?.intValue, method: value["method"]?.stringValue,
            interface: value["interface"]?.stringValue, rule: value["rule"]?.stringValue, group: value["group"]?.stringValue,
            limit: value["limit"]?.intValue)
    }

    /// Writes raw bytes: for tests that speak broken varlink on purpose.
    public func sendRaw(_ bytes: [UInt8]) throws(VarlinkClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .connectionLost(String(cString: strerror(errno)))
            }
            offset += written
        }
    }

    /// Reads the next NUL-terminated message and decodes it as a reply.
    public func readReply() throws -> VarlinkReply<JSONValue> {
        let message = try readMessage()
        do {
            return try decoder.decode(VarlinkReply<JSONValue>.self, from: Data(message))
        } catch {
            throw VarlinkClientError.malformedReply(String(decoding: message.prefix(200), as: UTF8.self))
        }
    }

    private func send(_ call: VarlinkCall<some Encodable & Sendable>) throws {
        var bytes = [UInt8](try encoder.encode(call))
        bytes.append(0)
        try sendRaw(bytes)
    }

    private func readMessage() throws(VarlinkClientError) -> [UInt8] {
        var scanned = 0
        while true {
            if let end = buffer[scanned...].firstIndex(of: 0) {
                let message = Array(buffer[..<end])
                buffer.removeFirst(end + 1)
                return message
            }
            scanned = buffer.count
            awaitReadable()
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .connectionLost(errno == EAGAIN ? "no reply within the timeout" : String(cString: strerror(errno)))
            }
            if count == 0 { throw .connectionLost("the daemon closed the connection") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    /// Returns once the socket has something to read (or has failed: `read` then says what),
    /// handling interruptions meanwhile.
    private func awaitReadable() {
        guard let interruption else { return }
        var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: interruption.descriptor, events: Int16(POLLIN), revents: 0)]
        while true {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            if poll(&descriptors, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if descriptors[1].revents != 0 {
                var byte: UInt8 = 0
                // One byte per signal: a second Ctrl-C queued behind the first gets its own call.
                guard read(interruption.descriptor, &byte, 1) == 1 else { return }
                interruption.onInterrupt()
            }
            if descriptors[0].revents != 0 { return }
        }
    }
}
