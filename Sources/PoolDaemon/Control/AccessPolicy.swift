#if canImport(Glibc)
import Glibc
#endif
import PoolProtocol

/// Who may call what. Reading (Status, ListJobs, GetJob, the service interface) is open to anyone
/// who can connect to the socket; the methods that change things are for root, the user the daemon
/// runs as (someone running their own poold drives it without a group) and members of the control
/// group. Checked before a call's parameters are even decoded.
struct AccessPolicy: Sendable {
    let controlGroup: ControlGroup
    /// The daemon's own uid: under systemd the `poold` system user, which no one logs in as.
    let ownerUID: uid_t

    init(controlGroup: ControlGroup, ownerUID: uid_t = getuid()) {
        self.controlGroup = controlGroup
        self.ownerUID = ownerUID
    }

    static let controlMethods: Set<String> = Set(
        [PoolInterface.Method.run, .cancel, .resize, .restartWorkers, .reload, .shutdown].map(\.qualifiedName))

    /// Who may drive the pool, in words (for refusals and the log).
    var allowed: String {
        let users = ownerUID == 0 ? "uid 0" : "uid 0 or \(ownerUID) (the daemon's own)"
        return "\(users) or membership of \(controlGroup)"
    }

    /// The refusal for `method` from `peer`, or nil when the call may go ahead.
    func refusal(method: String, peer: PeerCredentials) -> PoolError? {
        // Who the peer is first: cheaper than hashing the method's name, on every call.
        guard !peer.isRoot, peer.uid != ownerUID, Self.controlMethods.contains(method) else { return nil }
        if let gid = controlGroup.gid, peer.isMember(of: gid) { return nil }
        let shortName = String(method.split(separator: ".").last ?? Substring(method))
        let rule = "\(PoolInterface.name).{Run,Cancel,Resize,RestartWorkers,Shutdown} need \(allowed)"
        let reason = "\(shortName) needs \(allowed); you are \(peer)"
        return PoolError.permissionDenied(method: method, rule: rule, group: controlGroup.name, reason: reason)
    }
}
