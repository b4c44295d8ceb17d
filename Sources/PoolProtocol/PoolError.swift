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

        public init(reason: String? = nil, parameter: String? = nil, id: Int? = nil, requested: Int? = nil,
                    poolSize: Int? = nil, method: String? = nil, interface: String? = nil, rule: String? = nil,
                    group: String? = nil, limit: Int? = nil) {
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

    public static func poolTooSmall(requested: Int, poolSize: Int) -> PoolError {
        PoolError(name: PoolInterface.name + ".PoolTooSmall", parameters: .init(
            reason: "the job asks for \(requested) workers but the pool has \(poolSize); resize it with `poolctl pool resize \(requested)`",
            requested: requested, poolSize: poolSize))
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
