import CFuzzer
import FleetCore
import FleetHub
import Foundation

private let decoder = HealthMessageDecoder()

/// The first byte picks the topic (a report or a connection state); the rest is its payload.
@_cdecl("fleet_fuzz_one")
func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let topic = bytes[0] % 2 == 0 ? Topics.reported("gw-1") : Topics.connection("gw-1")
    let message = MQTTMessage(topic: topic, payload: Data(bytes: bytes + 1, count: count - 1), qos: .atLeastOnce, retained: false)
    _ = decoder.decode(message) { $0 == "gw-1" }
    return 0
}

exit(fleet_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
