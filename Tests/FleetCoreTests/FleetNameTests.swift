import FleetCore
import FleetTesting
import Foundation
import Testing

/// The one naming rule, and the device config as one of its entry points.
struct FleetNameTests {
    static let bad = [
        "", ".", "..", ".hidden", "-rf", "_x", "a/b", "../etc", "+", "gw#", "gw 1", "gw:1", "ü", "a\u{0}b",
        String(repeating: "x", count: 129),
    ]

    @Test func namesAreLettersDigitsDotUnderscoreDashStartingAlphanumeric() {
        for good in ["gw-001", "plant_1.cam.3", "Iris", "9", String(repeating: "x", count: 128)] {
            #expect(FleetName.isValid(good), "\(good)")
        }
        for bad in Self.bad {
            #expect(!FleetName.isValid(bad), "\(bad)")
        }
    }

    @Test func theErrorNamesTheValueWhatItNamesAndTheRule() {
        #expect(throws: FleetNameError.invalid("..", kind: .deviceId)) { try FleetName.check("..", as: .deviceId) }
        #expect(
            "\(FleetNameError.invalid("..", kind: .deviceId))"
                == "'..' is not a valid device id: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    }

    /// `..` as a device id would make the default data dir `/var/lib`.
    @Test func aDeviceConfigWithABadDeviceIdDoesNotLoad() throws {
        let directory = try TemporaryDirectory(prefix: "config-name")
        for id in [".", "..", "-x"] {
            let config = DeviceConfig(
                deviceId: id, broker: BrokerSettings(url: "mqtt://127.0.0.1:1883", insecure: true),
                hub: HubSettings(publicKey: "key", bundleBaseURL: "http://127.0.0.1:8080"))
            let path = directory.file("device.yaml")
            try config.save(to: path)
            #expect {
                try DeviceConfig.load(from: path)
            } throws: { error in
                "\(error)".contains("'\(id)' is not a valid device id") && "\(error)".contains(path)
            }
        }
    }
}
