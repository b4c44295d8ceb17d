#if canImport(Glibc)
import Glibc
#endif

/// How the control socket treats its clients: who may do what, how many may connect, how long a
/// client may take, and how much the daemon buffers for one. Every bound here exists so that a
/// careless or hostile client costs the daemon a known, small amount.
public struct ControlSocketSettings: Sendable {
    /// The largest varlink message a client may send; a longer one is refused before it is
    /// buffered whole, and the connection closed (its framing can no longer be trusted).
    public var maxMessageSize = 1 << 20
    /// A message must arrive whole within this time of its first byte, and a client must take its
    /// replies (the daemon's output buffer for it falls below the high-water mark) within it.
    public var clientTimeout: Duration = .seconds(10)
    /// A connection with no call in progress, none waiting and no partial message is closed after
    /// this long. Clients that follow something (`more`) or wait for a job are never idle.
    public var idleTimeout: Duration = .seconds(600)
    /// Connections open at once, in total and per peer uid; above either, the connection's first
    /// call is answered with `TooManyConnections` and the connection closed.
    public var maxConnections = 256
    public var maxConnectionsPerUID = 64
    /// Members of this group (and root) may call the methods that change things.
    public var controlGroup = ControlGroup(name: ControlGroup.defaultName, gid: nil)
    /// The permission bits the daemon gives the socket it binds (not one systemd passes it).
    public var socketMode: mode_t?
    /// Calls, and their bytes, a client may queue behind the one being answered before the daemon
    /// stops reading from its connection (it reads on once they have been answered). The daemon
    /// reads on while the client does not take its replies, up to these bounds, so that a client
    /// that writes all its calls before it reads (a pipeline of 10,000 calls is 340 KB) is not
    /// deadlocked against it: only the replies, not the calls, wait for the client.
    public var maxQueuedCalls = 16384
    public var maxQueuedBytes = 512 * 1024
    /// Calls answered in one go on a connection before the event loop serves the others.
    public var callsPerTurn = 64
    /// Output buffered for one connection: above `high` the daemon answers no further call and
    /// reads nothing more from it until the client has taken enough replies to go below `low`.
    public var outputLowWaterMark = 64 * 1024
    public var outputHighWaterMark = 256 * 1024

    public init() {}
}
