import Foundation

/// Hub → device, not retained: "send me the last lines of this module's log", so an
/// operator reads a device's log (`fleethub device logs`) without a shell on it. The
/// broker's ACL lets only the hub's identities publish it and only the device read it.
public struct ModuleLogRequest: Codable, Equatable, Sendable {
    /// Names the reply topic, `Topics.logReply(deviceId, id)`; letters, digits and `-` only.
    public var id: String
    public var module: String
    /// How many of the last lines, at most `ModuleLogRequest.maximumLines`.
    public var lines: Int
    /// A device that reconnects after this ignores the request: nobody waits for it any more.
    public var expiresAt: Date

    /// The most lines one reply carries, so a reply stays far below the broker's message limit.
    public static let maximumLines = 10_000

    public init(id: String, module: String, lines: Int, expiresAt: Date) {
        self.id = id
        self.module = module
        self.lines = lines
        self.expiresAt = expiresAt
    }

    /// Whether `id` can be a topic level: no wildcard, separator or empty level.
    public static func isValidId(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}

/// Device → hub, not retained, on `Topics.logReply(deviceId, requestId)`: the lines, or
/// why there are none (no such module, nothing logged yet, a malformed request).
public struct ModuleLogReply: Codable, Equatable, Sendable {
    public var id: String
    public var module: String
    /// Oldest first; empty when `error` is set.
    public var lines: [String]
    /// Whether lines were cut to fit `maximumBytes`: the oldest go first.
    public var truncated: Bool
    public var error: String?

    /// The most bytes of log lines one reply carries.
    public static let maximumBytes = 1 << 20

    public init(id: String, module: String, lines: [String], truncated: Bool = false, error: String? = nil) {
        self.id = id
        self.module = module
        self.lines = lines
        self.truncated = truncated
        self.error = error
    }
}
