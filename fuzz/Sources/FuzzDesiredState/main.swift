import CFuzzer
import Crypto
import EdgeRuntime
import FleetCore
import Foundation

private let key = Curve25519.Signing.PrivateKey()
private let gate = DesiredStateGate(
    deviceId: "gw-1", hubKey: try! HubPublicKey(base64: key.publicKey.rawRepresentation.base64EncodedString()))

/// An even first byte: the rest is a message on the desired topic, as any client could
/// publish it. An odd one: the rest is a payload the hub's key signed, so the fuzzer also
/// reaches the desired-state decoder and the gate's checks behind the signature.
@_cdecl("fleet_fuzz_one")
func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let rest = Data(bytes: bytes + 1, count: count - 1)
    let message: Data
    if bytes[0] % 2 == 0 {
        message = rest
    } else {
        let envelope = SignedEnvelope(
            payload: rest.base64EncodedString(), signature: try! key.signature(for: rest).base64EncodedString(),
            keyId: gate.hubKey.keyId)
        message = try! FleetJSON.encode(envelope)
    }
    _ = gate.check(message, acceptedRevision: Int(bytes[0] / 2))
    return 0
}

exit(fleet_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
