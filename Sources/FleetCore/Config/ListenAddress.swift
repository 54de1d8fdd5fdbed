/// `HOST:PORT` for a server to listen on, as `fleethub serve --http`,
/// `fleethub broker-config --listen` and `fleethub device add --local-api` take it:
/// the port 0–65535 (0 lets the system pick a free one), the host as given (empty
/// when the text is `:PORT`, for the caller's default). `[::1]:8080` is IPv6.
public struct ListenAddress: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Nil when `text` is not `HOST:PORT` with a port in 0–65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
