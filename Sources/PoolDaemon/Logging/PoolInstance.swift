#if canImport(Glibc)
import Glibc
#endif

/// The pool's identity in the journal (POOLD_INSTANCE on every record of the daemon and its
/// workers), so that `poolctl logs` shows one daemon's records where several share a journal.
/// Job ids are unique per state directory (the history continues them across restarts), so the
/// identity is that directory's: a daemon restarted on it keeps its records, another has its own.
public enum PoolInstance {
    /// 16 hex digits of a 64-bit FNV-1a hash of the state directory's real path (of the socket's
    /// path and the pid for a daemon that keeps no history).
    public static func identifier(stateDirectory: String?, socketPath: String) -> String {
        let key: String
        if let stateDirectory {
            // The directory may not exist yet (the history creates it): absolute, then resolved if it can be.
            var path = stateDirectory
            if !path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
                path = String(cString: cwd) + "/" + path
                free(cwd)
            }
            if let resolved = realpath(path, nil) {
                path = String(cString: resolved)
                free(resolved)
            }
            key = "state:" + path
        } else {
            key = "socket:\(socketPath):\(getpid())"
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
