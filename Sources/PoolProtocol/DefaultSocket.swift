#if canImport(Glibc)
import Glibc
#endif

/// Where daemon and client meet when no `--socket` is given: `$POOLD_SOCKET`, else
/// `/run/poold.sock` for root and `$XDG_RUNTIME_DIR/poold.sock` for anyone else.
public enum DefaultSocket {
    /// The system daemon's socket (poold.socket's ListenStream=).
    public static let systemPath = "/run/poold.sock"

    public static func path(environment: [String: String]) -> String {
        if let explicit = environment["POOLD_SOCKET"], !explicit.isEmpty { return explicit }
        if geteuid() == 0 { return systemPath }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/poold.sock" }
        return "/run/user/\(geteuid())/poold.sock"
    }
}
