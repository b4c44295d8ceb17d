/// The errors of `io.poold.Pool` and of `org.varlink.service`, as they travel on the wire: a
/// qualified name and parameters that always carry a human-readable `reason`.
public struct PoolError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var parameters: Parameters

    public struct Parameters: Codable, Sendable, Equatable {
        public var reason: String?
        public var parameter: String?
        public var id: Int?
        public var requested: Int?
        public var poolSize: Int?
        public var method: String?
        public var interface: String?
        public var rule: String?
        /// PermissionDenied: the control group whose members may call the method.
        public var group: String?
        /// TooManyConnections: the limit that was reached.
        public var limit: Int?
        /// PoolTooSmall: the slots that failed (and `poolctl pool restart` brings back).
        public var failedSlots: [Int]?

        public init(reason: String? = nil, parameter: String? = nil, id: Int? = nil, requested: Int? = nil,
                    poolSize: Int? = nil, method: String? = nil, interface: String? = nil, rule: String? = nil,
                    group: String? = nil, limit: Int? = nil, failedSlots: [Int]? = nil) {
            self.reason = reason
            self.parameter = parameter
            self.id = id
            self.requested = requested
            self.poolSize = poolSize
            self.method = method
            self.interface = interface
            self.rule = rule
            self.group = group
            self.limit = limit
            self.failedSlots = failedSlots
        }
    }

    public init(name: String, parameters: Parameters) {
        self.name = name
        self.parameters = parameters
    }

    public var description: String {
        var text = name
        if let parameter = parameters.parameter { text += " [\(parameter)]" }
        if let reason = parameters.reason { text += ": \(reason)" }
        else if let method = parameters.method { text += ": \(method)" }
        else if let interface = parameters.interface { text += ": \(interface)" }
        return text
    }

    /// The short name after the interface, such as `InvalidParameter`.
    public var shortName: String { String(name.split(separator: ".").last ?? Substring(name)) }

    public static func invalidParameter(_ parameter: String, _ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".InvalidParameter", parameters: .init(reason: reason, parameter: parameter))
    }

    public static func notFound(id: Int, _ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".NotFound", parameters: .init(reason: reason, id: id))
    }

    /// `maxPoolSize`: the largest the pool may grow, so that the advice is one that can be taken.
    public static func poolTooSmall(requested: Int, poolSize: Int, maxPoolSize: Int = .max) -> PoolError {
        let advice = requested <= maxPoolSize
            ? "resize it with `poolctl pool resize \(requested)`"
            : "it can grow to \(maxPoolSize) at most (poold --max-workers, within the kernel's queue limits): ask for \(min(poolSize, maxPoolSize)) or fewer"
        return PoolError(name: PoolInterface.name + ".PoolTooSmall", parameters: .init(
            reason: "the job asks for \(requested) workers but the pool has \(poolSize); \(advice)",
            requested: requested, poolSize: poolSize))
    }

    /// The pool is large enough but some of its slots failed: only `usable` can run a job now.
    public static func poolTooSmall(requested: Int, poolSize: Int, usable: Int, failedSlots: [Int]) -> PoolError {
        PoolError(name: PoolInterface.name + ".PoolTooSmall", parameters: .init(
            reason: failedSlotsReason(requested: requested, poolSize: poolSize, usable: usable, failedSlots: failedSlots),
            requested: requested, poolSize: poolSize, failedSlots: failedSlots))
    }

    /// Why a job of `requested` workers cannot run while `failedSlots` are failed, and what to do.
    public static func failedSlotsReason(requested: Int, poolSize: Int, usable: Int, failedSlots: [Int]) -> String {
        let slots = failedSlots.map(String.init)
        let (named, its, it) = slots.count == 1 ? ("slot \(slots[0]) has", "its", "it") : ("slots \(slots.joined(separator: ", ")) have", "their", "them")
        return "the job asks for \(requested) workers but only \(usable) of the pool's \(poolSize) can run: \(named) failed (\(its) workers kept crashing); bring \(it) back with `poolctl pool restart \(slots.joined(separator: " "))`, or grow the pool with `poolctl pool resize \(poolSize + requested - usable)`"
    }

    public static func shuttingDown(_ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".ShuttingDown", parameters: .init(reason: reason))
    }

    public static func invalidRequest(_ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".InvalidRequest", parameters: .init(reason: reason))
    }

    public static func resourceLimit(_ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".ResourceLimit", parameters: .init(reason: reason))
    }

    /// A control method (Run, Cancel, Resize, Shutdown) called by someone who is neither root nor
    /// in the control group.
    public static func permissionDenied(method: String, rule: String, group: String, reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".PermissionDenied", parameters: .init(
            reason: reason, method: method, rule: rule, group: group))
    }

    /// A connection above `--max-connections` or `--max-connections-per-uid`.
    public static func tooManyConnections(limit: Int, _ reason: String) -> PoolError {
        PoolError(name: PoolInterface.name + ".TooManyConnections", parameters: .init(reason: reason, limit: limit))
    }

    public static func methodNotFound(_ method: String) -> PoolError {
        PoolError(name: "org.varlink.service.MethodNotFound", parameters: .init(
            reason: "no method \(method); `varlinkctl info` or org.varlink.service.GetInfo lists the interfaces", method: method))
    }

    public static func interfaceNotFound(_ interface: String) -> PoolError {
        PoolError(name: "org.varlink.service.InterfaceNotFound", parameters: .init(
            reason: "this service implements \(PoolInterface.name) and org.varlink.service only", interface: interface))
    }

    public static func serviceInvalidParameter(_ parameter: String, _ reason: String) -> PoolError {
        PoolError(name: "org.varlink.service.InvalidParameter", parameters: .init(reason: reason, parameter: parameter))
    }
}
