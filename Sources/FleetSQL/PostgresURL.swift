import Foundation

/// A PostgreSQL database named as libpq names it:
/// `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`. A
/// password left out of the URL is taken from `PGPASSWORD`.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLSMode
    /// PEM file of the CA that signed the server's certificate (`sslrootcert`), for `verify-full`.
    public var rootCertificate: String?

    /// libpq's `sslmode` values this client supports; `prefer` is libpq's default.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without checking its certificate.
        case prefer
        /// TLS or no connection, without checking the certificate.
        case require
        /// TLS, and the certificate must be valid for the host.
        case verifyFull = "verify-full"
    }

    public init(parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else { throw SQLError.invalidPostgresURL(Self.redacted(text), reason: "it is not a postgres:// URL") }
        guard let user = components.user, !user.isEmpty else {
            throw SQLError.invalidPostgresURL(Self.redacted(text), reason: "it names no user")
        }
        guard let host = components.host, !host.isEmpty else {
            throw SQLError.invalidPostgresURL(Self.redacted(text), reason: "it names no host")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw SQLError.invalidPostgresURL(Self.redacted(text), reason: "it names no database (the path after the host)")
        }
        self.user = user
        self.password = components.password ?? environment["PGPASSWORD"]
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
        self.tls = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw SQLError.invalidPostgresURL(
                        Self.redacted(text),
                        reason: "sslmode '\(item.value ?? "")' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: "|"))")
                }
                tls = mode
            case "sslrootcert":
                rootCertificate = item.value
            default:
                throw SQLError.invalidPostgresURL(Self.redacted(text), reason: "unknown parameter '\(item.name)'")
            }
        }
    }

    /// The URL without its password, for messages and listings.
    public var description: String {
        "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" + (tls == .prefer ? "" : "?sslmode=\(tls.rawValue)")
    }

    private static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }
}
