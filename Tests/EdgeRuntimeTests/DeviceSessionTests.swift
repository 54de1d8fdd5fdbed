import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

@Suite struct DeviceSessionTests {
    @Test func plainMQTTIsRefusedUnlessTheConfigSaysInsecure() throws {
        let directory = try TemporaryDirectory(prefix: "session")
        let store = try StateStore(url: directory.url.appendingPathComponent("state.sqlite"))
        var config = DeviceConfig(
            deviceId: "gw-001", broker: BrokerSettings(url: "mqtt://127.0.0.1:1883"),
            hub: HubSettings(publicKey: HubSigningKey().publicKey.base64, bundleBaseURL: "http://127.0.0.1:8080"))
        #expect(throws: SessionError.plainMQTT(url: "mqtt://127.0.0.1:1883")) {
            try DeviceSession(config: config, store: store, logger: Logger(label: "test")) { _ in }
        }
        config.broker.insecure = true
        _ = try DeviceSession(config: config, store: store, logger: Logger(label: "test")) { _ in }
    }
}
