#if canImport(Glibc)
import Glibc
#endif

/// Where the daemon keeps what outlives it (the job history) when `--state-dir` does not say:
/// `$STATE_DIRECTORY` (set by systemd from `StateDirectory=poold`; the first, should the unit
/// name several), else `/var/lib/poold` for root, else `$XDG_STATE_HOME/poold`, else
/// `~/.local/state/poold` (the XDG base directory specification's default).
public enum StateDirectory {
    public static func path(environment: [String: String]) -> String {
        if let fromSystemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !fromSystemd.isEmpty {
            return String(fromSystemd)
        }
        if getuid() == 0 { return "/var/lib/poold" }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/poold" }
        return home(environment: environment) + "/.local/state/poold"
    }

    private static func home(environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        if let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir { return String(cString: directory) }
        return "/var/lib/poold"  // not writable: the start fails and says to use --state-dir
    }
}
