import FleetCore
import Foundation
import Hummingbird

/// Enforces `HTTPAccess` on every request before any route runs: bundle downloads
/// need the admin token or the current token of a registered device, and a device
/// gets only the bundles of its current or previous desired state (`BundleGrants`);
/// other reads need
/// the viewer or admin token unless reads are public; every other method (a write)
/// needs the admin token. Tokens come as `Authorization: Bearer <token>`, or, so a
/// browser can open the dashboard, as the password of HTTP Basic authentication (any
/// user name); they are never logged or echoed.
struct HTTPAccessMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let workspace: Workspace

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let access = try HTTPAccess.load(from: workspace)
        let token = Self.presentedToken(request.headers[.authorization])
        let isAdmin = token.map { HTTPAccess.equal($0, access.adminToken) } ?? false
        let isRead = request.method == .get || request.method == .head
        if isAdmin {
            return try await next(request, context)
        }
        if isRead && request.uri.path.hasPrefix("/v1/bundles/") {
            guard let token, let device = try access.device(presenting: token, currentSerial: currentSerial) else {
                throw Self.refusal(token, challenge: Self.bearer, "a bundle download needs the device's token (hub.token in its config)")
            }
            // A malformed digest names no bundle: the endpoint answers it with 400.
            if let digest = ContentDigest(String(request.uri.path.dropFirst("/v1/bundles/".count))),
                try !BundleGrants(workspace: workspace).allows(digest, device: device)
            {
                throw HTTPError(
                    .forbidden,
                    message: "device \(device) may not download bundle \(digest): it is in neither its current nor its previous desired state; deploy it to the device first")
            }
        } else if isRead {
            guard access.publicReads || token.map({ HTTPAccess.equal($0, access.viewerToken) }) == true else {
                throw Self.refusal(
                    token, challenge: Self.basic, "reading the hub API needs the viewer or admin token")
            }
        } else {
            throw Self.refusal(token, challenge: Self.bearer, "changing the hub needs the admin token")
        }
        return try await next(request, context)
    }

    /// The certificate serial the device's token must be bound to: its valid
    /// certificate's, or `plain` for a device of an insecure hub; nil for an unknown or
    /// revoked device.
    private func currentSerial(of id: String) throws -> String? {
        guard (try? DeviceRegistry(workspace: workspace).show(id: id)) != nil else { return nil }
        if CertificateAuthority.exists(in: workspace.certificateAuthorityFolder),
            let serial = try workspace.certificateAuthority().validSerial(of: id)
        {
            return serial
        }
        return DeviceEnrollment.plainSerial
    }

    /// The token of a `Bearer <token>` header, or the password of a `Basic` one.
    static func presentedToken(_ header: String?) -> String? {
        guard let header, let space = header.firstIndex(of: " ") else { return nil }
        let credentials = header[header.index(after: space)...].trimmingCharacters(in: .whitespaces)
        let token: String
        switch header[..<space].lowercased() {
        case "bearer":
            token = credentials
        case "basic":
            guard let decoded = Data(base64Encoded: credentials).map({ String(decoding: $0, as: UTF8.self) }),
                let colon = decoded.firstIndex(of: ":")
            else { return nil }
            token = String(decoded[decoded.index(after: colon)...])
        default:
            return nil
        }
        return token.isEmpty ? nil : token
    }

    /// Reads (the dashboard in a browser, the JSON API) ask for Basic, so a browser
    /// prompts for the login; bundle downloads and writes, made by programs, for Bearer.
    static let basic = "Basic realm=\"fleethub\""
    static let bearer = "Bearer realm=\"fleethub\""

    /// 401 (with the scheme to use) without a token, 403 with one that does not allow this.
    static func refusal(_ token: String?, challenge: String, _ message: String) -> HTTPError {
        token == nil
            ? HTTPError(.unauthorized, headers: [.wwwAuthenticate: challenge], message: message)
            : HTTPError(.forbidden, message: message)
    }
}
