import FleetCore
import Foundation
import Hummingbird

/// Enforces `HTTPAccess` on every request before any route runs: bundle downloads
/// need the admin token or the current token of a registered device; other reads need
/// the viewer or admin token unless reads are public; every other method (a write)
/// needs the admin token. Tokens come as `Authorization: Bearer <token>` and are never
/// logged or echoed.
struct HTTPAccessMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let workspace: Workspace

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let access = try HTTPAccess.load(from: workspace)
        let token = Self.bearer(request.headers[.authorization])
        let isAdmin = token.map { HTTPAccess.equal($0, access.adminToken) } ?? false
        let isRead = request.method == .get || request.method == .head
        if isAdmin {
            return try await next(request, context)
        }
        if isRead && request.uri.path.hasPrefix("/v1/bundles/") {
            guard let token, try access.device(presenting: token, currentSerial: currentSerial) != nil else {
                throw Self.refusal(token, "a bundle download needs the device's token (hub.token in its config)")
            }
        } else if isRead {
            guard access.publicReads || token.map({ HTTPAccess.equal($0, access.viewerToken) }) == true else {
                throw Self.refusal(token, "reading the hub API needs the viewer or admin token")
            }
        } else {
            throw Self.refusal(token, "changing the hub needs the admin token")
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

    static func bearer(_ header: String?) -> String? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// 401 without a token, 403 with a token that does not allow this.
    static func refusal(_ token: String?, _ message: String) -> HTTPError {
        token == nil
            ? HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: message)
            : HTTPError(.forbidden, message: message)
    }
}
