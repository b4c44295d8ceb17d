/// A varlink call: `{"method": "...", "parameters": {...}, "more": true}` followed by a NUL byte.
public struct VarlinkCall<Parameters: Encodable & Sendable>: Encodable, Sendable {
    public var method: String
    public var parameters: Parameters
    /// The caller accepts several replies, each but the last with `continues: true`.
    public var more: Bool?
    /// The caller wants no reply at all.
    public var oneway: Bool?

    public init(method: String, parameters: Parameters, more: Bool? = nil, oneway: Bool? = nil) {
        self.method = method
        self.parameters = parameters
        self.more = more
        self.oneway = oneway
    }
}

/// The part of a call the server reads before it knows which parameter type the method takes.
public struct VarlinkCallHeader: Decodable, Sendable {
    public var method: String
    public var more: Bool?
    public var oneway: Bool?
    public var upgrade: Bool?

    public init(method: String, more: Bool? = nil, oneway: Bool? = nil, upgrade: Bool? = nil) {
        self.method = method
        self.more = more
        self.oneway = oneway
        self.upgrade = upgrade
    }
}

/// A call's parameters, decoded once the method is known.
public struct VarlinkParametersEnvelope<Parameters: Decodable>: Decodable {
    public var parameters: Parameters?
}

/// A reply: parameters, or an error name with its parameters; `continues` while more replies follow.
public struct VarlinkReply<Parameters: Sendable>: Sendable {
    public var parameters: Parameters?
    public var continues: Bool?
    public var error: String?

    public init(parameters: Parameters?, continues: Bool? = nil, error: String? = nil) {
        self.parameters = parameters
        self.continues = continues
        self.error = error
    }
}

/// A method without parameters, or a reply without fields: encodes as `{}`.
public struct NoParameters: Codable, Sendable, Equatable {
    public init() {}
}

extension VarlinkReply: Encodable where Parameters: Encodable {}
extension VarlinkReply: Decodable where Parameters: Decodable {}
