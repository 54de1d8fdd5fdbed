import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// The CA's revocation list lapses after `--days`; past it, the broker refuses every
/// client. `fleethub alerts` warns 30 days ahead, `fleethub serve` renews the CA's list
/// and the broker folder's copy 60 days ahead, and a real mosquitto takes the renewed list.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct RevocationListRenewalTests {
    @Test func serveRenewsAListAboutToLapseAndTheBrokerAcceptsIt() async throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-crl")
        let workspace = directory.file("hub")
        let brokerPort = try Fixtures.freePort()
        func hub(_ arguments: String...) throws -> String {
            try Fixtures.run(CommandLineTests.executable, try HubTestDatabase.arguments(arguments) + ["--workspace", workspace])
        }
        func lapses() throws -> [Date] {
            try ["hub/ca/crl.pem", "broker/crl.pem"].map { try RevocationListValidity.read(directory.file($0)).nextUpdate }
        }
        func expiringAlerts() throws -> [HealthAlert] {
            struct Alerts: Decodable { var alerts: [HealthAlert] }
            let output = try hub("alerts", "--json")
            return try FleetJSON.decode(Alerts.self, from: Data(output.utf8)).alerts.filter { $0.kind == .revocationListExpiring }
        }

        _ = try hub("init", "--broker", "mqtts://127.0.0.1:\(brokerPort)", "--public-url", "https://127.0.0.1:8080")
        _ = try hub(
            "broker-config", "--out", directory.file("broker"), "--listen", "127.0.0.1:\(brokerPort)", "--run-as", NSUserName())
        #expect(try expiringAlerts().isEmpty, "a new list lapses in a year")

        let written = try hub("ca", "crl", "--days", "10")
        #expect(written.contains(directory.file("broker/crl.pem")), "`ca crl` also rewrites the broker's copy")
        for lapse in try lapses() {
            #expect(abs(lapse.timeIntervalSinceNow - 10 * 86_400) < 600)
        }
        let alerts = try expiringAlerts()
        #expect(Set(alerts.map(\.subject)) == [directory.file("hub/ca/crl.pem"), directory.file("broker/crl.pem")])
        #expect(alerts.allSatisfy { $0.message.contains("lapses in 10 days") && $0.message.contains("restart the broker") })

        let serve = try ChildProcess(
            CommandLineTests.executable,
            ["serve", "--workspace", workspace, "--http", "127.0.0.1:\(try Fixtures.freePort())"],
            outputPath: directory.file("serve.log"))
        defer { serve.stop() }
        let renewed = try await eventually {
            try lapses().allSatisfy { $0.timeIntervalSinceNow > 360 * 86_400 }
        }
        #expect(renewed, "serve did not renew both lists: \((try? lapses()) ?? [])")
        #expect(try expiringAlerts().isEmpty)
        let log = try String(contentsOfFile: directory.file("serve.log"), encoding: .utf8)
        #expect(log.contains("renewed the revocation list \(directory.file("broker/crl.pem"))"))

        // The broker checks the certificate `serve` connects with against the renewed list.
        let broker = try await TLSBroker.start(configFile: directory.file("broker/mosquitto.conf"), port: brokerPort)
        defer { broker.stop() }
        let connected = await eventually { broker.log.contains("u'\(HubIdentity.healthIngestion.rawValue)'") }
        #expect(connected, "serve did not connect: \(broker.log)")
    }

    @Test func aFileThatIsNotARevocationListIsNamed() throws {
        let directory = try TemporaryDirectory(prefix: "fleethub-crl-bad")
        let path = directory.file("crl.pem")
        try "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try RevocationListValidity.read(path)
        } throws: { error in
            guard case SecurityError.invalidRevocationList(let named, let reason) = error else { return false }
            return named == path && reason.contains("not an 'X509 CRL'")
        }
    }
}
