#if canImport(Glibc)
import Glibc
#endif

/// The group whose members may drive the pool (`Run`, `Cancel`, `Resize`, `Shutdown`) besides
/// root: `--control-group`, else `control-group` in the configuration file, else `poold`, the
/// group that `systemd/poold.sysusers` creates and that owns the socket under systemd.
public struct ControlGroup: Sendable, Equatable, CustomStringConvertible {
    public static let defaultName = "poold"

    public let name: String
    /// Nil when no such group exists on this system: then only root and the daemon's own user may
    /// drive the pool.
    public let gid: gid_t?

    public init(name: String, gid: gid_t?) {
        self.name = name
        self.gid = gid
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// Looks the group up by name or number, once, at start-up (through NSS: never on the event loop).
    /// A group that does not exist is an error when it was asked for by name (`required`), and
    /// only means "root alone" for the default.
    public static func resolve(_ specification: String, required: Bool) throws(Problem) -> ControlGroup {
        let gid: gid_t?
        var name = specification
        if let number = gid_t(specification) {
            gid = number
            name = groupName(number) ?? specification
        } else {
            gid = groupID(specification)
        }
        if gid == nil, required {
            throw Problem(description: "no group named '\(specification)' exists (getent group \(specification)); create it (groupadd \(specification)) or name another with --control-group")
        }
        // Group 0 cannot be told from the zero padding of SO_PEERGROUPS (see PeerCredentials), and
        // root needs no group to drive the pool anyway.
        if gid == 0 {
            throw Problem(description: "group 0 (\(name)) cannot be the control group: root may always drive the pool; name a group of its own, such as poold")
        }
        return ControlGroup(name: name, gid: gid)
    }

    public var description: String {
        gid.map { "group '\(name)' (gid \($0))" } ?? "group '\(name)' (which does not exist on this system)"
    }

    private static func groupID(_ name: String) -> gid_t? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    private static func groupName(_ gid: gid_t) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.gr_name)
    }
}
