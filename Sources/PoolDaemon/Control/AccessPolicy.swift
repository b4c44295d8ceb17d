import PoolProtocol

/// Who may call what. Reading (Status, ListJobs, GetJob, the service interface) is open to anyone
/// who can connect to the socket; the methods that change things are for root and members of the
/// control group. Checked before a call's parameters are even decoded.
struct AccessPolicy: Sendable {
    let controlGroup: ControlGroup

    static let controlMethods: Set<String> = Set(
        [PoolInterface.Method.run, .cancel, .resize, .shutdown].map(\.qualifiedName))

    /// The refusal for `method` from `peer`, or nil when the call may go ahead.
    func refusal(method: String, peer: PeerCredentials) -> PoolError? {
        guard Self.controlMethods.contains(method), !peer.isRoot else { return nil }
        if let gid = controlGroup.gid, peer.isMember(of: gid) { return nil }
        let shortName = String(method.split(separator: ".").last ?? Substring(method))
        let rule = "\(PoolInterface.name).{Run,Cancel,Resize,Shutdown} need uid 0 or membership of \(controlGroup)"
        let reason = "\(shortName) needs uid 0 or membership of \(controlGroup); you are \(peer)"
        return PoolError.permissionDenied(method: method, rule: rule, group: controlGroup.name, reason: reason)
    }
}
