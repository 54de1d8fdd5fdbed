import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The password and ACL files `fleethub broker files` writes, loaded by a real
/// mosquitto: device logins work, and a device sees only its own topics.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct BrokerFilesTests {
    @Test func hashMatchesMosquittoPasswdFormat() throws {
        // The same password and salt that `mosquitto_passwd` turned into this line.
        let salt = try #require(Data(base64Encoded: "xtjIOIIaKzdi/sxh"))
        #expect(try BrokerCredentials.mosquittoHash(of: "secret", salt: salt)
            == "$7$101$xtjIOIIaKzdi/sxh$pnLRdYe/E/wsUrq/zPLn7ChnelJ6KCxHTabFjFhR/uhjUeZM01DZVeXJiIvAjAl78n1M0DeONvUA5MZIk3WsTQ==")
    }

    @Test func devicesLogInAndSeeOnlyTheirOwnTopics() async throws {
        let hub = try HubFixture()
        try hub.workspace.set("broker-username", to: "hub")
        try hub.workspace.set("broker-password", to: "hub-secret")
        let (gw1, _) = try hub.devices.add(id: "gw-1", tags: [:])
        _ = try hub.devices.add(id: "gw-2", tags: [:])
        let written = try BrokerFiles(workspace: hub.workspace).write(to: hub.directory.url.appendingPathComponent("broker"))

        let port = try Fixtures.freePort()
        let configFile = hub.directory.file("mosquitto.conf")
        try "listener \(port) 127.0.0.1\nuser \(NSUserName())\npersistence false\n\(written.configLines)\n"
            .write(toFile: configFile, atomically: true, encoding: .utf8)
        let mosquitto = try #require(Fixtures.which("mosquitto"))
        let broker = try ChildProcess(mosquitto, ["-c", configFile], outputPath: hub.directory.file("mosquitto.log"))
        defer { broker.stop() }
        #expect(await eventually(timeout: .seconds(5)) { Fixtures.isListening(port: port) }, "mosquitto did not listen")

        try hub.workspace.set("broker", to: "mqtt://127.0.0.1:\(port)")
        #expect(try await DesiredStatePublisher(workspace: hub.workspace).publishPending() == ["gw-1", "gw-2"])

        func client(_ user: String, _ password: String?) throws -> MQTTClient {
            try MQTTClient(MQTTConfiguration(
                host: "127.0.0.1", port: port, clientId: "\(user)-\(UUID().uuidString.prefix(6))", username: user,
                password: password, connectTimeout: .seconds(5), acknowledgementTimeout: .seconds(5)))
        }
        let device = try client("gw-1", gw1.broker.password)
        try await device.connect()
        defer { device.disconnect() }
        let own = try await device.messages(Topics.desired("gw-1"))
        let other = try? await device.messages(Topics.desired("gw-2"))
        var ownIterator = own.makeAsyncIterator()
        let message = try #require(await ownIterator.next())
        #expect(try hub.workspace.signingKey.publicKey.open(message.payload, for: "gw-1").revision == 1)
        if let other {
            // Allowed subscriptions deliver the retained state at once; a denied one delivers nothing.
            let received = await withTaskGroup(of: Bool.self) { group in
                group.addTask { var iterator = other.makeAsyncIterator(); return await iterator.next() != nil }
                group.addTask { try? await Task.sleep(for: .milliseconds(500)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(!received)
        }

        let intruder = try client("gw-1", "wrong-password")
        await #expect(throws: MQTTError.self) { try await intruder.connect() }
    }
}
