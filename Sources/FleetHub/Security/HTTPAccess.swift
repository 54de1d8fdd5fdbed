import Crypto
import FleetCore
import Foundation

/// Who may use the hub's HTTP API: an admin token for every write, a viewer token for
/// reads (or reads open to anyone on the network when `publicReads` is set), and a
/// per-device token for bundle downloads. Kept in the workspace's `http-access.json`
/// (mode 0600), created with new random tokens the first time it is needed.
public struct HTTPAccess: Codable, Equatable, Sendable {
    public var adminToken: String
    public var viewerToken: String
    /// True lets anyone read the dashboard and JSON API without a token.
    public var publicReads: Bool
    /// Base64 HMAC key from which every device's token is derived, so the hub stores
    /// no per-device secret.
    var deviceTokenKey: String

    static let fileName = "http-access.json"

    /// The workspace's access settings, created on first use.
    public static func load(from workspace: Workspace) throws -> HTTPAccess {
        let path = workspace.root.appendingPathComponent(fileName).path
        if !FileManager.default.fileExists(atPath: path) {
            let created = HTTPAccess(
                adminToken: BrokerCredentials.newPassword(), viewerToken: BrokerCredentials.newPassword(), publicReads: false,
                deviceTokenKey: SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString())
            try created.save(in: workspace)
            return created
        }
        do {
            return try FleetJSON.decode(HTTPAccess.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw SecurityError.unreadable(path, reason: "\(error)")
        }
    }

    public func save(in workspace: Workspace) throws {
        try writeSecretFile(
            try FleetJSON.prettyEncoder().encode(self), to: workspace.root.appendingPathComponent(Self.fileName).path)
    }

    /// The bundle-download token of device `id` holding the certificate `serial`
    /// (`"plain"` without a CA): `id:` + base64url(HMAC-SHA256). A new certificate (a
    /// device revoked and added again) gives a new token, and the old one stops working.
    public func deviceToken(for id: String, serial: String) -> String {
        "\(id):\(mac(for: id, serial: serial))"
    }

    /// The device a bearer token belongs to, if it is that device's current token.
    func device(presenting token: String, currentSerial: (String) throws -> String?) rethrows -> String? {
        guard let colon = token.firstIndex(of: ":") else { return nil }
        let id = String(token[..<colon])
        guard let serial = try currentSerial(id) else { return nil }
        return Self.equal(token, deviceToken(for: id, serial: serial)) ? id : nil
    }

    private func mac(for id: String, serial: String) -> String {
        let key = SymmetricKey(data: Data(base64Encoded: deviceTokenKey) ?? Data())
        let code = HMAC<SHA256>.authenticationCode(for: Data("fleethub bundle download\n\(id)\n\(serial)".utf8), using: key)
        return Data(code).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Compares two secrets in time independent of where they differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
