import Foundation
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket connection to the daemon that behaves as badly as a test needs: sends partial
/// messages, byte by byte, without ever reading, and reports exactly what the daemon did to it
/// (a reply, an EOF, a refusal to take more bytes).
final class RawConnection {
    let descriptor: Int32
    private var received: [UInt8] = []

    init(socketPath: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError(description: "socket: \(String(cString: strerror(errno)))") }
        let connected = withUnixAddress(socketPath) { connect(descriptor, $0, $1) }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw HarnessError(description: "connect \(socketPath): \(reason)")
        }
    }

    deinit {
        close(descriptor)
    }

    /// Writes everything, blocking as needed.
    func send(_ bytes: [UInt8]) throws {
        let failure = write(bytes)
        guard failure == 0 else { throw HarnessError(description: "send: \(String(cString: strerror(failure)))") }
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Writes everything unless the daemon has already closed the connection (EPIPE, ECONNRESET):
    /// a client it refused at accept may be closed before its call is written. Returns whether
    /// the call was written; what the daemon sent before closing is still there to read.
    func sendUnlessClosed(_ bytes: [UInt8]) throws -> Bool {
        let failure = write(bytes)
        if failure == EPIPE || failure == ECONNRESET { return false }
        guard failure == 0 else { throw HarnessError(description: "send: \(String(cString: strerror(failure)))") }
        return true
    }

    /// Writes all of `bytes`; returns 0 or the errno that stopped it.
    private func write(_ bytes: [UInt8]) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }

    /// Shuts down the writing side (the daemon reads EOF) while this side still reads.
    func shutdownWrite() throws {
        guard shutdown(descriptor, Int32(SHUT_WR)) == 0 else {
            throw HarnessError(description: "shutdown: \(String(cString: strerror(errno)))")
        }
    }

    /// A call as a client library would write it, NUL-terminated.
    static func call(_ method: String, _ parameters: String = "{}") -> [UInt8] {
        Array(#"{"method":"\#(method)","parameters":\#(parameters)}"#.utf8) + [0]
    }

    /// Writes what the socket takes without blocking; returns how many bytes it took (0 when the
    /// daemon's receive buffer and ours are full: the daemon has stopped reading).
    func sendWithoutBlocking(_ bytes: ArraySlice<UInt8>) throws -> Int {
        let written = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if written < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
            throw HarnessError(description: "send: \(String(cString: strerror(errno)))")
        }
        return written
    }

    /// What happened within `seconds`: a whole message, the daemon closing the connection, or nothing.
    enum Event: Equatable {
        case message([UInt8])
        case closed
        case nothing
    }

    func next(timeoutSeconds seconds: Double) throws -> Event {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let end = received.firstIndex(of: 0) {
                let message = Array(received[..<end])
                received.removeFirst(end + 1)
                return .message(message)
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return .nothing }
            var descriptorSet = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptorSet, 1, Int32(remaining * 1000) + 1)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno == ECONNRESET) { return .closed }
            if count < 0 {
                if errno == EINTR { continue }
                throw HarnessError(description: "recv: \(String(cString: strerror(errno)))")
            }
            received.append(contentsOf: chunk[..<count])
        }
    }

    /// The next message decoded as a varlink reply (a test failure when something else happens).
    func reply(timeoutSeconds seconds: Double = 30) throws -> VarlinkReply<JSONValue> {
        switch try next(timeoutSeconds: seconds) {
        case .message(let bytes): return try JSONDecoder().decode(VarlinkReply<JSONValue>.self, from: Data(bytes))
        case .closed: throw HarnessError(description: "the daemon closed the connection instead of replying")
        case .nothing: throw HarnessError(description: "no reply within \(seconds) s")
        }
    }

    /// Waits for the daemon to close the connection, skipping any replies before it; false if it
    /// did not within `seconds`.
    func waitForClose(timeoutSeconds seconds: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while deadline.timeIntervalSinceNow > 0 {
            switch try next(timeoutSeconds: deadline.timeIntervalSinceNow) {
            case .closed: return true
            case .message: continue
            case .nothing: return false
            }
        }
        return false
    }

    /// Whether the daemon has closed its end, without reading anything: poll's POLLHUP/POLLRDHUP.
    func peerHasClosed(timeoutSeconds seconds: Double) -> Bool {
        let peerHungUp: Int16 = 0x2000   // POLLRDHUP, which Glibc's module leaves out (_GNU_SOURCE)
        var descriptorSet = pollfd(fd: descriptor, events: peerHungUp, revents: 0)
        let ready = poll(&descriptorSet, 1, Int32(seconds * 1000))
        return ready > 0 && descriptorSet.revents & (peerHungUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }
}

/// The resident memory of a process, from /proc/PID/status (VmRSS), in bytes.
func residentBytes(pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kilobytes * 1024
}
