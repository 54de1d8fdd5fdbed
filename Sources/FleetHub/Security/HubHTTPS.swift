import FleetCore
import Foundation
import SwiftASN1
import X509

/// What `fleethub serve` answers HTTPS with, and what devices trust to check it: by
/// default a certificate from the hub's own CA for the public URL's host, which every
/// device config already trusts; or the operator's own certificate (`tls-cert`,
/// `tls-key`), checked against their CA (`tls-ca`) or the device's system trust store.
public struct HubHTTPS: Equatable, Sendable {
    public var certificatePath: String
    public var keyPath: String
    /// The CA file device configs name in `hub.caFile`; nil: the system's trust store.
    public var trustedCAPath: String?
}

extension Workspace {
    /// The HTTPS settings of an `https://` public URL, nil for an `http://` one that
    /// `insecure-http` allows (refused otherwise). Issues the hub CA's certificate
    /// when it is missing, names another host, or expires within
    /// `CertificateAuthority.httpsRenewAhead` (a workspace made before HTTPS, a new public URL).
    public func https(now: Date = Date()) throws -> HubHTTPS? {
        let config = try config()
        try config.checkPublicURLScheme()
        guard URLComponents(string: config.publicURL)?.scheme == "https" else { return nil }
        switch (config.tlsCertificate, config.tlsKey) {
        case (let certificate?, let key?):
            return HubHTTPS(certificatePath: certificate, keyPath: key, trustedCAPath: config.tlsCA)
        case (nil, nil):
            let authority = try certificateAuthority()
            try authority.issueHTTPSCertificate(host: try config.publicHost, now: now)
            return HubHTTPS(
                certificatePath: authority.httpsCertificatePath, keyPath: authority.httpsKeyPath,
                trustedCAPath: authority.certificatePath)
        case (nil, _?): throw SecurityError.incompleteTLSSettings(missing: HubConfig.Key.tlsCertificate.rawValue)
        case (_?, nil): throw SecurityError.incompleteTLSSettings(missing: HubConfig.Key.tlsKey.rawValue)
        }
    }

    /// The CA file a device must trust for the hub's HTTPS, without issuing anything:
    /// nil for an `http://` public URL or an operator's certificate without `tls-ca`.
    public func httpsTrustedCA() throws -> String? {
        let config = try config()
        guard URLComponents(string: config.publicURL)?.scheme == "https" else { return nil }
        if config.tlsCertificate != nil { return config.tlsCA }
        return try certificateAuthority().certificatePath
    }
}

extension Workspace {
    /// `fleethub alerts` warns about an HTTPS certificate that expires within this time.
    public static let httpsWarnAhead: TimeInterval = 30 * 86_400

    /// A warning when the certificate `serve` answers HTTPS with expires within
    /// `httpsWarnAhead` or cannot be read: devices then refuse every download. Found
    /// without issuing anything (the dashboard's overview asks on every refresh).
    public func httpsCertificateAlerts(now: Date = Date()) -> [HealthAlert] {
        guard let config = try? config(), URLComponents(string: config.publicURL)?.scheme == "https" else { return [] }
        let path = config.tlsCertificate ?? CertificateAuthority.file("https.crt", in: certificateAuthorityFolder)
        let fix = config.tlsCertificate == nil
            ? "restart `fleethub serve`: it issues a new one from the hub's CA \(Int(CertificateAuthority.httpsRenewAhead / 86_400)) days ahead"
            : "renew the certificate, point tls-cert and tls-key at it (`fleethub config set tls-cert PATH`) and restart `fleethub serve`"
        let expiry: Date
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            guard let leaf = try PEMDocument.parseMultiple(pemString: text).first else {
                throw SecurityError.unreadable(path, reason: "no PEM certificate in it")
            }
            expiry = try Certificate(derEncoded: leaf.derBytes).notValidAfter
        } catch {
            // The hub CA's certificate of a workspace made before HTTPS: the next `serve` issues it.
            if config.tlsCertificate == nil, !FileManager.default.fileExists(atPath: path) { return [] }
            return [HealthAlert(kind: .httpsCertificateExpiring, subject: path, message: "cannot read the HTTPS certificate \(path): \(error); \(fix)")]
        }
        let left = expiry.timeIntervalSince(now)
        guard left < Self.httpsWarnAhead else { return [] }
        let when = left <= 0 ? "expired on" : "expires in \(Int((left / 86_400).rounded(.up))) days, on"
        return [HealthAlert(
            kind: .httpsCertificateExpiring, subject: path,
            message: "the hub's HTTPS certificate \(path) \(when) \(expiry.formatted(.iso8601)); devices then refuse every bundle download; \(fix)")]
    }
}
