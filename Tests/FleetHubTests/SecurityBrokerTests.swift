import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The broker configuration `fleethub broker-config` writes, run by a real mosquitto
/// with TLS: who may connect, and what each identity may read and write.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct SecurityBrokerTests {
    /// Subscribes to `filter` (a refusal is fine) and returns the first message that
    /// arrives on it within `wait`, or nil.
    func received(_ client: MQTTClient, _ filter: String, within wait: Duration = .milliseconds(800)) async -> MQTTMessage? {
        guard let stream = try? await client.messages(filter) else { return nil }
        return await withTaskGroup(of: MQTTMessage?.self) { group in
            group.addTask {
                for await message in stream { return message }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: wait)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// As root (how an operator runs it into /etc/mosquitto), the configuration needs
    /// the broker's user, who then owns the key: mosquitto drops to it before reading.
    @Test func asRootTheBrokerUserOwnsTheKeyAndTheBrokerStartsOnIt() async throws {
        let fixture = try SecurityFixture()
        let folder = fixture.hub.directory.url.appendingPathComponent("broker")
        let configuration = BrokerConfiguration(workspace: fixture.workspace, listen: "127.0.0.1:\(fixture.port)")
        guard getuid() == 0 else {
            // Another user runs mosquitto as itself: no --run-as needed.
            #expect(throws: Never.self) { try configuration.write(to: folder) }
            return
        }
        #expect(throws: SecurityError.brokerUserNeeded) { try configuration.write(to: folder) }
        let user = "mosquitto"
        let entry = try #require(getpwnam(user), "the mosquitto package creates the user \(user)")
        chmod(fixture.hub.directory.url.path, 0o755)
        let written = try BrokerConfiguration(workspace: fixture.workspace, listen: "127.0.0.1:\(fixture.port)", runAs: user)
            .write(to: folder)
        var status = stat()
        #expect(stat(folder.appendingPathComponent("broker.key").path, &status) == 0)
        #expect(status.st_uid == entry.pointee.pw_uid && status.st_mode & 0o777 == 0o600)
        let broker = try await TLSBroker.start(configFile: written.configFile, port: fixture.port)
        defer { broker.stop() }
        let device = try fixture.client(try fixture.enroll("gw-a"))
        try await device.connect()
        device.disconnect()
    }

    @Test func theHubPublishesOverTLSAndADeviceReadsOnlyItsOwnDesiredState() async throws {
        let fixture = try SecurityFixture()
        let deviceA = try fixture.enroll("gw-a")
        _ = try fixture.enroll("gw-b")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }
        #expect(try await DesiredStatePublisher(workspace: fixture.workspace).publishPending() == ["gw-a", "gw-b"])

        let clientA = try fixture.client(deviceA)
        try await clientA.connect()
        defer { clientA.disconnect() }
        let own = try await clientA.messages(Topics.desired("gw-a"))
        var ownMessages = own.makeAsyncIterator()
        let envelope = try #require(await ownMessages.next())
        #expect(try fixture.workspace.signingKey.publicKey.open(envelope.payload, for: "gw-a").deviceId == "gw-a")

        // B's desired state is retained on the broker, yet A never gets it (mosquitto 2.0
        // may grant the subscription and drop every message on it).
        #expect(await received(clientA, Topics.desired("gw-b")) == nil, "device A read device B's desired state")
        let wildcard = await received(clientA, "fleet/v1/#")
        #expect(wildcard == nil || wildcard?.topic == Topics.desired("gw-a"))
    }

    @Test func aDeviceCanWriteOnlyItsOwnReports() async throws {
        let fixture = try SecurityFixture()
        let deviceA = try fixture.enroll("gw-a")
        _ = try fixture.enroll("gw-b")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }
        let hub = try fixture.hubClient()
        try await hub.connect()
        defer { hub.disconnect() }
        let reports = try await hub.messages("fleet/v1/devices/+/+")

        let clientA = try fixture.client(deviceA)
        try await clientA.connect()
        defer { clientA.disconnect() }
        // Forged reports for B (the broker drops them), then A's own, which must be first to arrive.
        try? await clientA.publish(Topics.reported("gw-b"), payload: Data("forged".utf8), qos: .atLeastOnce, retain: false)
        try? await clientA.publish(Topics.connection("gw-b"), payload: Data("forged".utf8), qos: .atLeastOnce, retain: false)
        try? await clientA.publish(Topics.desired("gw-a"), payload: Data("forged".utf8), qos: .atLeastOnce, retain: false)
        try await clientA.publish(Topics.reported("gw-a"), payload: Data("mine".utf8), qos: .atLeastOnce, retain: false)
        try await clientA.publish(Topics.connection("gw-a"), payload: Data("mine".utf8), qos: .atLeastOnce, retain: false)

        var iterator = reports.makeAsyncIterator()
        let first = try #require(await iterator.next())
        let second = try #require(await iterator.next())
        #expect(first.topic == Topics.reported("gw-a") && first.payload == Data("mine".utf8))
        #expect(second.topic == Topics.connection("gw-a") && second.payload == Data("mine".utf8))
    }

    @Test func revokedOrForeignCertificatesCannotConnect() async throws {
        let fixture = try SecurityFixture()
        let deviceA = try fixture.enroll("gw-a")
        let deviceB = try fixture.enroll("gw-b")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }

        // A client certificate with the name "gw-a" from another CA.
        let other = try TemporaryDirectory(prefix: "other-ca")
        let otherCA = try CertificateAuthority.create(in: other.url, brokerHosts: ["127.0.0.1"])
        try otherCA.issue(.client("gw-a")).write(certificateTo: other.file("gw-a.crt"), keyTo: other.file("gw-a.key"))
        var impostor = deviceA
        impostor.broker.certFile = other.file("gw-a.crt")
        impostor.broker.keyFile = other.file("gw-a.key")
        let impostorClient = try fixture.client(impostor)
        await #expect(throws: MQTTError.self) { try await impostorClient.connect() }
        impostorClient.disconnect()

        // B connects until its certificate is revoked and the broker reloads the list.
        let beforeRevocation = try fixture.client(deviceB)
        try await beforeRevocation.connect()
        beforeRevocation.disconnect()
        try DeviceRevocation(workspace: fixture.workspace).revoke(id: "gw-b")
        try await fixture.reload(broker)
        let revoked = try fixture.client(deviceB)
        await #expect(throws: MQTTError.self) { try await revoked.connect() }
        revoked.disconnect()

        let stillValid = try fixture.client(deviceA)
        try await stillValid.connect()
        stillValid.disconnect()
    }

    @Test func aClientRefusesABrokerCertificateForAnotherHostName() async throws {
        let fixture = try SecurityFixture(brokerHosts: ["broker.example"])
        let device = try fixture.enroll("gw-a")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }
        let client = try fixture.client(device)
        await #expect(throws: MQTTError.self) { try await client.connect() }
        client.disconnect()

        // The same broker with a certificate for the address the client dials is accepted.
        try fixture.authority.issueBrokerCertificate(hosts: ["127.0.0.1"])
        try await fixture.reload(broker)
        let control = try fixture.client(device)
        try await control.connect()
        control.disconnect()
    }
}
