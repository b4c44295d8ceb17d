import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A terminal poolctl may redraw on. Off a terminal (a pipe, a file) or on a dumb one there is
/// none, and output stays plain lines.
struct Terminal {
    let descriptor: Int32
    /// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    let colour: Bool

    init?(descriptor: Int32, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard isatty(descriptor) == 1, environment["TERM"] != "dumb" else { return nil }
        self.descriptor = descriptor
        colour = environment["NO_COLOR"]?.isEmpty ?? true
    }

    /// The window's size (80 x 24 when the terminal does not say).
    var size: (columns: Int, rows: Int) {
        var window = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0, window.ws_row > 0 else { return (80, 24) }
        return (Int(window.ws_col), Int(window.ws_row))
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// `text` in an SGR style (`"32"` green, `"1"` bold), when colour is on.
    func styled(_ text: String, _ style: String) -> String {
        colour ? "\u{1B}[\(style)m" + text + "\u{1B}[0m" : text
    }

    static let eraseLine = "\u{1B}[K"
    static let home = "\u{1B}[H"
    static let eraseBelow = "\u{1B}[J"
}

/// Ctrl-C while poolctl waits on the daemon. SIGINT's handler only writes a byte to a pipe (about
/// all a signal handler may safely do); the varlink clients watch the pipe while they wait
/// (`VarlinkClient.interruption`) and act on it in the program's ordinary flow.
enum Interrupts {
    /// The pipe's write end, for the handler: set once, before the handler is installed.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1

    /// Catches SIGINT from now on; returns the pipe's read end (nil if no pipe can be made: then
    /// Ctrl-C keeps its default, ending poolctl).
    static func catchSIGINT() -> Int32? {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            // The handler must never block on a full pipe.
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        writeEnd = ends[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(Interrupts.writeEnd, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        guard sigaction(SIGINT, &action, nil) == 0 else { return nil }
        return ends[0]
    }
}
