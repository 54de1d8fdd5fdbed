import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing
import X509

/// The hub's certificate authority, device enrollment and revocation, checked with the
/// real `openssl verify` as a broker would check a client.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "openssl")))
struct SecurityCertificateTests {
    func mode(_ path: String) throws -> Int? {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
    }

    /// `openssl verify` of `certificate` against the CA and its revocation list.
    func verify(_ certificate: String, _ authority: CertificateAuthority) throws -> Result<String, FixtureError> {
        let openssl = try #require(Fixtures.which("openssl"))
        do {
            return .success(try Fixtures.run(
                openssl, ["verify", "-CAfile", authority.certificatePath, "-crl_check", "-CRLfile", authority.revocationListPath, certificate]))
        } catch let error as FixtureError {
            return .failure(error)
        }
    }

    @Test func aDeviceGetsACertificateNamedAfterItsId() throws {
        let fixture = try SecurityFixture()
        let config = try fixture.enroll("gw-a")
        #expect(config.broker.url == "mqtts://127.0.0.1:\(fixture.port)")
        #expect(config.broker.username == nil && config.broker.password == nil && config.broker.insecure == nil)
        let certificatePath = try #require(config.broker.certFile)
        let keyPath = try #require(config.broker.keyFile)
        let caPath = try #require(config.broker.caFile)
        #expect(try mode(keyPath) == 0o600)
        #expect(try mode(fixture.hub.directory.file("devices/gw-a/gw-a.yaml")) == 0o600)
        #expect(try mode(fixture.workspace.certificateAuthorityFolder.appendingPathComponent("ca.key").path) == 0o600)
        for identity in HubIdentity.allCases {
            #expect(try mode(fixture.authority.keyPath(of: identity)) == 0o600)
        }
        #expect(try mode(fixture.authority.brokerKeyPath) == 0o600)
        let certificate = try Certificate(pemEncoded: String(contentsOfFile: certificatePath, encoding: .utf8))
        #expect(certificate.subject.description == "CN=gw-a")
        #expect(certificate.issuer == fixture.authority.certificate.subject)
        #expect(try String(contentsOfFile: caPath, encoding: .utf8)
            == String(contentsOfFile: fixture.authority.certificatePath, encoding: .utf8))
        #expect(try verify(certificatePath, fixture.authority).get().contains("OK"))
        #expect(config.hub.token?.hasPrefix("gw-a:") == true)
    }

    @Test func revokingPutsTheCertificateOnTheListAndRemovesTheDevice() throws {
        let fixture = try SecurityFixture()
        let config = try fixture.enroll("gw-a", tags: ["site": "x"])
        try fixture.hub.packagedScorer()
        try fixture.hub.deploy("name: prod\npriority: 1\ntarget: site=x\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        #expect(try fixture.hub.devices.desiredState(id: "gw-a")?.modules.count == 1)

        let outcome = try DeviceRevocation(workspace: fixture.workspace).revoke(id: "gw-a")
        #expect(outcome.revokedSerials.count == 1)
        #expect(outcome.change.changedDevices == ["gw-a"])
        #expect(try fixture.hub.devices.list().isEmpty)
        #expect(try fixture.authority.validSerial(of: "gw-a") == nil)
        guard case .failure(let error) = try verify(try #require(config.broker.certFile), fixture.authority) else {
            Issue.record("openssl accepted a revoked certificate")
            return
        }
        #expect("\(error)".contains("revoked"))
        #expect(throws: RegistryError.unknownDevice("gw-a")) {
            try DeviceRevocation(workspace: fixture.workspace).revoke(id: "gw-a")
        }
    }

    @Test func certificatesIssuedAtOnceAreAllRecorded() throws {
        let fixture = try SecurityFixture()
        let authority = fixture.authority
        DispatchQueue.concurrentPerform(iterations: 16) { index in
            _ = try? authority.issue(.client("gw-\(index)"))
        }
        let entries = try authority.index.entries()
        #expect(Set(entries.map(\.commonName)) == Set((0..<16).map { "gw-\($0)" } + HubIdentity.allCases.map(\.rawValue) + ["127.0.0.1"]))
        #expect(Set(entries.map(\.serial)).count == entries.count)
    }

    @Test func plainMQTTIsRefusedUnlessTheWorkspaceSaysInsecure() throws {
        let strict = try HubFixture(broker: "mqtt://127.0.0.1:1883", insecure: false)
        #expect(throws: SecurityError.plainBrokerRefused("mqtt://127.0.0.1:1883")) {
            try strict.workspace.brokerConnection(as: .commands, logger: .init(label: "test"))
        }
        let (config, _) = try strict.devices.add(id: "gw-a", tags: [:])
        #expect(throws: SecurityError.plainBrokerRefused("mqtt://127.0.0.1:1883")) {
            try DeviceEnrollment(workspace: strict.workspace).credentials(for: config, configPath: strict.directory.file("gw-a.yaml"))
        }

        let lax = try HubFixture(broker: "mqtt://127.0.0.1:1883", insecure: true)
        #expect(try lax.workspace.brokerConnection(as: .commands, logger: .init(label: "test")).tls == nil)
        let (laxConfig, _) = try lax.devices.add(id: "gw-a", tags: [:])
        let enrolled = try DeviceEnrollment(workspace: lax.workspace).credentials(for: laxConfig, configPath: lax.directory.file("gw-a.yaml"))
        #expect(enrolled.broker.insecure == true)
        #expect(enrolled.broker.password != nil && enrolled.broker.certFile == nil)
    }

    @Test(arguments: HubIdentity.allCases)
    func eachHubConnectionHasItsOwnCertificate(identity: HubIdentity) throws {
        let fixture = try SecurityFixture()
        let configuration = try fixture.workspace.brokerConnection(as: identity, logger: .init(label: "test"))
        let tls = try #require(configuration.tls)
        #expect(tls.caFile == fixture.authority.certificatePath)
        let certificate = try Certificate(pemEncoded: String(contentsOfFile: try #require(tls.certFile), encoding: .utf8))
        #expect(certificate.subject.description == "CN=\(identity.rawValue)")
        #expect(configuration.clientId == identity.rawValue)
        #expect(!FleetName.isValid(identity.rawValue))
    }

    /// A CA made when the hub had one identity lacks the others: the first connection issues them.
    @Test func aMissingHubCertificateIsIssuedOnFirstUse() throws {
        let fixture = try SecurityFixture()
        let authority = fixture.authority
        try FileManager.default.removeItem(atPath: authority.certificatePath(of: .rollouts))
        try FileManager.default.removeItem(atPath: authority.keyPath(of: .rollouts))
        let tls = try #require(try fixture.workspace.brokerConnection(as: .rollouts, logger: .init(label: "test")).tls)
        let certificate = try Certificate(pemEncoded: String(contentsOfFile: try #require(tls.certFile), encoding: .utf8))
        #expect(certificate.subject.description == "CN=fleethub:rollouts")
        #expect(try mode(authority.keyPath(of: .rollouts)) == 0o600)
    }

    @Test func brokerConfigurationRequiresCertificatesAndConfinesDevices() throws {
        let fixture = try SecurityFixture()
        let folder = fixture.hub.directory.url.appendingPathComponent("broker")
        let written = try BrokerConfiguration(workspace: fixture.workspace, listen: "127.0.0.1:8883", runAs: NSUserName()).write(to: folder)
        let conf = try String(contentsOfFile: written.configFile, encoding: .utf8)
        for line in ["allow_anonymous false", "listener 8883 127.0.0.1", "require_certificate true",
                     "use_identity_as_username true", "crlfile \(written.revocationListFile)", "acl_file \(written.aclFile)"] {
            #expect(conf.contains(line + "\n"), "mosquitto.conf lacks '\(line)'")
        }
        let acl = try String(contentsOfFile: written.aclFile, encoding: .utf8)
        #expect(acl.contains("user fleethub:hub\ntopic readwrite fleet/v1/#\n"))
        #expect(acl.contains("pattern read fleet/v1/devices/%u/desired\n"))
        #expect(acl.contains("pattern write fleet/v1/devices/%u/reported\n"))
        #expect(acl.contains("pattern write fleet/v1/devices/%u/connection\n"))
        #expect(!acl.contains("readwrite fleet/v1/devices/%u"))
        #expect(try mode(folder.appendingPathComponent("broker.key").path) == 0o600)
    }
}
