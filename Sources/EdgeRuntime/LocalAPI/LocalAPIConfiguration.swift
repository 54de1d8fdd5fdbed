/// Where the device's local inference API listens and what it accepts. The runtime
/// builds it from its settings; it binds to loopback unless told otherwise.
public struct LocalAPIConfiguration: Sendable {
    /// Address to bind, `127.0.0.1` by default so only local processes can call it.
    public var host: String
    /// TCP port; 0 picks a free one (see `LocalAPIServer`'s `onListening`).
    public var port: Int
    /// Also serve the same API on this Unix socket path when set.
    public var unixSocketPath: String?
    /// Largest request body accepted; bigger ones get 413.
    public var maxBodyBytes: Int
    /// Seconds a connection may stay silent (e.g. a client that never finishes its
    /// body) before the server closes it.
    public var idleTimeoutSeconds: Int

    public init(
        host: String = "127.0.0.1", port: Int = 8765, unixSocketPath: String? = nil, maxBodyBytes: Int = 1 << 20,
        idleTimeoutSeconds: Int = 60
    ) {
        self.host = host
        self.port = port
        self.unixSocketPath = unixSocketPath
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}
