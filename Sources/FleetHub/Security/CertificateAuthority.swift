import Crypto
import FleetCore
import Foundation
import SwiftASN1
import X509

/// The hub's own certificate authority. Every broker connection in the fleet is TLS
/// with certificates it issued: the broker's server certificate, the hub's client
/// certificate, and one client certificate per device whose common name is the device
/// id, so the broker knows who is connected without any password. Its files live in
/// the workspace's `ca/` folder; the private keys are created with mode 0600.
public struct CertificateAuthority: Sendable {
    public let folder: URL
    public let certificate: Certificate
    let key: Certificate.PrivateKey

    static let validity: TimeInterval = 10 * 365 * 24 * 3600

    public var certificatePath: String { Self.file("ca.crt", in: folder) }
    var keyPath: String { Self.file("ca.key", in: folder) }
    /// The client certificate and key of one of the hub's broker connections.
    public func certificatePath(of identity: HubIdentity) -> String { Self.file("\(identity.fileName).crt", in: folder) }
    public func keyPath(of identity: HubIdentity) -> String { Self.file("\(identity.fileName).key", in: folder) }
    /// The broker's server certificate and key.
    public var brokerCertificatePath: String { Self.file("broker.crt", in: folder) }
    public var brokerKeyPath: String { Self.file("broker.key", in: folder) }
    /// The server certificate and key `fleethub serve` answers HTTPS with.
    public var httpsCertificatePath: String { Self.file("https.crt", in: folder) }
    public var httpsKeyPath: String { Self.file("https.key", in: folder) }
    /// Every certificate issued, in the `index.txt` format of `openssl ca`.
    public var index: CertificateIndex { CertificateIndex(path: Self.file("index.txt", in: folder)) }
    /// The certificate revocation list the broker loads (`crlfile`).
    public var revocationListPath: String { Self.revocationListPath(in: folder) }
    /// The same, for a CA folder that is not opened.
    static func revocationListPath(in folder: URL) -> String { file("crl.pem", in: folder) }

    /// Whether `folder` already holds a CA.
    public static func exists(in folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: file("ca.crt", in: folder))
    }

    /// Creates the CA, the hub's client certificate, a server certificate for the broker
    /// reachable as any of `brokerHosts` (names or IP addresses), and an empty CRL.
    @discardableResult
    public static func create(in folder: URL, brokerHosts: [String], now: Date = Date()) throws -> CertificateAuthority {
        guard !exists(in: folder) else { throw SecurityError.certificateAuthorityExists(folder.path) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName { CommonName("fleethub certificate authority") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
        try writeSecretFile(Data(try key.serializeAsPEM().pemString.utf8), to: file("ca.key", in: folder))
        try Data(try certificate.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: file("ca.crt", in: folder)))
        let authority = CertificateAuthority(folder: folder, certificate: certificate, key: key)
        try authority.index.create()
        for identity in HubIdentity.allCases {
            try authority.issueCertificate(of: identity, now: now)
        }
        try authority.issueBrokerCertificate(hosts: brokerHosts, now: now)
        try authority.writeRevocationList()
        return authority
    }

    /// Opens the CA in `folder`.
    public static func open(in folder: URL) throws -> CertificateAuthority {
        guard exists(in: folder) else { throw SecurityError.noCertificateAuthority(folder.path) }
        do {
            let certificate = try Certificate(pemEncoded: String(contentsOfFile: file("ca.crt", in: folder), encoding: .utf8))
            let key = try Certificate.PrivateKey(pemEncoded: String(contentsOfFile: file("ca.key", in: folder), encoding: .utf8))
            return CertificateAuthority(folder: folder, certificate: certificate, key: key)
        } catch {
            throw SecurityError.unreadable(folder.path, reason: "\(error)")
        }
    }

    /// Issues a certificate with a new key and records it in the index.
    public func issue(_ request: CertificateRequest, now: Date = Date()) throws -> IssuedCertificate {
        let subjectKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName { CommonName(request.commonName) }
        let notValidAfter = now.addingTimeInterval(request.validity)
        let usage: ExtendedKeyUsage.Usage = request.isServer ? .serverAuth : .clientAuth
        let names = try request.hosts.map(Self.generalName)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: subjectKey.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: notValidAfter,
            issuer: self.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                try ExtendedKeyUsage([usage])
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: key)
        let serial = CertificateIndex.hex(certificate.serialNumber)
        try index.append(.init(status: .valid, expiry: notValidAfter, revokedAt: nil, serial: serial, commonName: request.commonName))
        return IssuedCertificate(
            commonName: request.commonName, serial: serial,
            certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: try subjectKey.serializeAsPEM().pemString)
    }

    /// Issues the client certificate of `identity`, unless it exists (a CA made before
    /// the hub had one identity per connection lacks some).
    public func issueCertificate(of identity: HubIdentity, now: Date = Date()) throws {
        guard !FileManager.default.fileExists(atPath: certificatePath(of: identity)) else { return }
        try issue(.client(identity.rawValue), now: now).write(certificateTo: certificatePath(of: identity), keyTo: keyPath(of: identity))
    }

    /// Replaces the broker's server certificate with one for `hosts`.
    public func issueBrokerCertificate(hosts: [String], now: Date = Date()) throws {
        guard !hosts.isEmpty else { throw SecurityError.noBrokerHosts }
        try issue(.server(hosts), now: now).write(certificateTo: brokerCertificatePath, keyTo: brokerKeyPath)
    }

    /// `serve` replaces its HTTPS certificate when it expires within this time.
    public static let httpsRenewAhead: TimeInterval = 60 * 86_400

    /// Issues the HTTPS certificate for the public URL's `host` unless the one there
    /// names it and stays valid beyond `httpsRenewAhead`; a loopback host also gets the
    /// other loopback names. Returns whether it issued one.
    @discardableResult
    public func issueHTTPSCertificate(host: String, now: Date = Date()) throws -> Bool {
        let name = try Self.generalName(host)
        if let current = try? Certificate(pemEncoded: String(contentsOfFile: httpsCertificatePath, encoding: .utf8)),
            current.notValidAfter.timeIntervalSince(now) > Self.httpsRenewAhead,
            (try? current.extensions.subjectAlternativeNames)??.contains(name) == true
        {
            return false
        }
        let loopback = ["localhost", "127.0.0.1", "::1"]
        let hosts = loopback.contains(host) ? [host] + ["localhost", "127.0.0.1"].filter { $0 != host } : [host]
        try issue(.server(hosts), now: now).write(certificateTo: httpsCertificatePath, keyTo: httpsKeyPath)
        return true
    }

    /// Revokes every valid certificate issued to `commonName` and rewrites the CRL.
    /// Returns the serials revoked.
    @discardableResult
    public func revoke(commonName: String, now: Date = Date()) throws -> [String] {
        let serials = try index.revoke(commonName: commonName, at: now)
        try writeRevocationList()
        return serials
    }

    /// The serial of the newest valid certificate issued to `commonName`, if any.
    public func validSerial(of commonName: String) throws -> String? {
        try index.entries().last { $0.commonName == commonName && $0.status == .valid }?.serial
    }

    /// How long a revocation list stays valid. The broker rejects every client once it is
    /// past, so it is renewed before then (`RevocationListRenewal`).
    public static let revocationListValidityDays = 365

    /// Rewrites `crl.pem` from the index. swift-certificates cannot build CRLs, so this
    /// runs `openssl ca -gencrl` (Debian's `openssl` package), which reads the same index.
    public func writeRevocationList(validityDays: Int = Self.revocationListValidityDays) throws {
        try RevocationListWriter(authority: self).write(validityDays: validityDays)
    }

    static func file(_ name: String, in folder: URL) -> String { folder.appendingPathComponent(name).path }

    static func generalName(_ host: String) throws -> GeneralName {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v4) { Array($0) })))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(withUnsafeBytes(of: &v6) { Array($0) })))
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "*" }) else {
            throw SecurityError.invalidHost(host)
        }
        return .dnsName(host)
    }
}

/// What to put in a certificate the hub issues.
public struct CertificateRequest: Sendable {
    public var commonName: String
    public var hosts: [String]
    public var isServer: Bool
    public var validity: TimeInterval

    /// A client certificate: a device (common name = device id) or the hub.
    public static func client(_ commonName: String, validity: TimeInterval = 5 * 365 * 24 * 3600) -> CertificateRequest {
        CertificateRequest(commonName: commonName, hosts: [], isServer: false, validity: validity)
    }

    /// A server certificate (the broker's, the hub's HTTPS), valid for every name or address in `hosts`.
    public static func server(_ hosts: [String], validity: TimeInterval = 5 * 365 * 24 * 3600) -> CertificateRequest {
        CertificateRequest(commonName: hosts.first ?? "broker", hosts: hosts, isServer: true, validity: validity)
    }
}

/// A certificate the CA just issued, with its new private key (PEM).
public struct IssuedCertificate: Sendable {
    public var commonName: String
    public var serial: String
    public var certificatePEM: String
    public var privateKeyPEM: String

    /// Writes the certificate, and the key with mode 0600.
    public func write(certificateTo certificatePath: String, keyTo keyPath: String) throws {
        try writeSecretFile(Data(privateKeyPEM.utf8), to: keyPath)
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePath))
    }
}
