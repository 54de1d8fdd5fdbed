import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The broker configuration `fleethub broker-config` writes, run by a real mosquitto
/// with TLS: who may connect, and what each identity may read and write.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct SecurityBrokerTests {
    /// The first element of `stream` within `wait` that `matches`, or nil.
    func first<Element: Sendable>(
        of stream: AsyncStream<Element>, within wait: Duration, where matches: @escaping @Sendable (Element) -> Bool = { _ in true }
    ) async -> Element? {
        await withTaskGroup(of: Element?.self) { group in
            group.addTask {
                for await element in stream where matches(element) { return element }
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

    /// Subscribes to `filter` (a refusal is fine) and returns the first message that
    /// arrives on it within `wait`, or nil.
    func received(_ client: MQTTClient, _ filter: String, within wait: Duration = .milliseconds(800)) async -> MQTTMessage? {
        guard let stream = try? await client.messages(filter) else { return nil }
        return await first(of: stream, within: wait)
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

    /// The broker takes every client id from the certificate: a device that connects with
    /// another's client id gets its own, and cannot push the other off (which would fire
    /// its last will, again and again). The hub's connections, each with its own
    /// identity, do not push each other off either.
    @Test func noClientCanTakeOverAnotherSession() async throws {
        let fixture = try SecurityFixture()
        let deviceA = try fixture.enroll("gw-a")
        let deviceB = try fixture.enroll("gw-b")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }
        let clientA = try fixture.client(deviceA, clientId: "edge-runtime-gw-a")
        try await clientA.connect()
        defer { clientA.disconnect() }
        let hubs = try HubIdentity.allCases.map { try fixture.hubClient(as: $0) }
        for hub in hubs { try await hub.connect() }
        defer { for hub in hubs { hub.disconnect() } }

        let events = ([clientA] + hubs).map { $0.connectionEvents() }
        let watching = Task {
            var lost: [Bool] = []
            for stream in events { lost.append(await first(of: stream, within: .seconds(2)) { $0 != .connected } != nil) }
            return lost
        }
        let impostor = try fixture.client(deviceB, clientId: "edge-runtime-gw-a")
        try await impostor.connect()
        defer { impostor.disconnect() }
        let lost = await watching.value
        #expect(lost.first == false, "device B pushed device A off with A's client id: \(broker.log)")
        #expect(lost.dropFirst().allSatisfy { !$0 }, "hub connections pushed each other off: \(broker.log)")
        #expect(broker.log.contains("as gw-b ("), "the broker did not give B its own id: \(broker.log)")
        #expect(!broker.log.contains("already connected"))
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

    /// `fleethub device logs`: only the hub asks a device for its logs, only the device
    /// asked reads the request, and a device answers only under its own reply topics.
    @Test func onlyTheHubAsksADeviceForItsLogsAndOnlyThatDeviceAnswers() async throws {
        let fixture = try SecurityFixture()
        let deviceA = try fixture.enroll("gw-a")
        let deviceB = try fixture.enroll("gw-b")
        let broker = try await fixture.startBroker()
        defer { broker.stop() }
        let hub = try fixture.hubClient()
        try await hub.connect()
        defer { hub.disconnect() }
        let clientA = try fixture.client(deviceA)
        try await clientA.connect()
        defer { clientA.disconnect() }
        let clientB = try fixture.client(deviceB)
        try await clientB.connect()
        defer { clientB.disconnect() }

        let requestsA = try await clientA.messages(Topics.logRequest("gw-a"))
        let requestsB = try await clientB.messages(Topics.logRequest("gw-b"))
        let spiedByB = try? await clientB.messages(Topics.logRequest("gw-a"))
        // A forges a request to B (dropped), then the hub asks B and A.
        try? await clientA.publish(Topics.logRequest("gw-b"), payload: Data("forged".utf8), qos: .atLeastOnce, retain: false)
        try await hub.publish(Topics.logRequest("gw-b"), payload: Data("ask b".utf8), qos: .atLeastOnce, retain: false)
        try await hub.publish(Topics.logRequest("gw-a"), payload: Data("ask a".utf8), qos: .atLeastOnce, retain: false)
        #expect(await first(of: requestsB, within: .seconds(5))?.payload == Data("ask b".utf8))
        #expect(await first(of: requestsA, within: .seconds(5))?.payload == Data("ask a".utf8))
        if let spiedByB { #expect(await first(of: spiedByB, within: .milliseconds(800)) == nil) }

        let replies = try await hub.messages("fleet/v1/devices/+/logs/reply/+")
        try? await clientB.publish(Topics.logReply("gw-a", "r1"), payload: Data("forged".utf8), qos: .atLeastOnce, retain: false)
        try await clientA.publish(Topics.logReply("gw-a", "r1"), payload: Data("mine".utf8), qos: .atLeastOnce, retain: false)
        let reply = await first(of: replies, within: .seconds(5))
        #expect(reply?.topic == Topics.logReply("gw-a", "r1") && reply?.payload == Data("mine".utf8))
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
