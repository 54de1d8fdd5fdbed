import Foundation
import Testing

@testable import FleetCore

struct SigningTests {
    let hub = HubSigningKey()
    let state = DesiredState(
        deviceId: "gw-001", revision: 7, issuedAt: Date(timeIntervalSince1970: 1_795_000_000),
        deployments: [DeploymentReference(name: "iris-prod", priority: 10)],
        modules: [ModuleSpec(
            name: "iris", kind: .pythonScoring,
            bundle: BundleReference(digest: ContentDigest(of: Data("bundle".utf8)), size: 6, url: "http://hub/b"),
            workers: 2, env: ["LOG_LEVEL": "info"],
            telemetry: TelemetrySettings(sampleRate: 1, collectInputs: true, collectOutputs: true))])

    @Test func signedStateOpensWithThePublicKey() throws {
        let envelope = try FleetJSON.encode(hub.sign(state))
        let opened = try hub.publicKey.open(envelope, for: "gw-001")
        #expect(opened == state)
    }

    @Test func payloadIsTheExactSignedBytes() throws {
        let envelope = try hub.sign(state)
        let payload = try #require(Data(base64Encoded: envelope.payload))
        let json = try #require(JSONSerialization.jsonObject(with: payload) as? [String: Any])
        #expect(json["revision"] as? Int == 7)
        #expect(json["issuedAt"] as? String == "2026-11-18T11:06:40Z")
        #expect(envelope.keyId == hub.publicKey.keyId)
        #expect(envelope.keyId.count == 16)
    }

    @Test func alteredPayloadIsRefusedAsForged() throws {
        var envelope = try hub.sign(state)
        var tampered = state
        tampered.revision = 8
        envelope.payload = try FleetJSON.encode(tampered).base64EncodedString()
        #expect(throws: SigningError.badSignature) {
            try hub.publicKey.open(FleetJSON.encode(envelope), for: "gw-001")
        }
    }

    @Test func stateSignedByAnotherKeyIsRefused() throws {
        let intruder = HubSigningKey()
        var envelope = try intruder.sign(state)
        #expect(throws: SigningError.unknownKey(intruder.publicKey.keyId, expected: hub.publicKey.keyId)) {
            try hub.publicKey.open(FleetJSON.encode(envelope), for: "gw-001")
        }
        envelope.keyId = hub.publicKey.keyId
        #expect(throws: SigningError.badSignature) {
            try hub.publicKey.open(FleetJSON.encode(envelope), for: "gw-001")
        }
    }

    @Test func stateForAnotherDeviceIsRefused() throws {
        let envelope = try FleetJSON.encode(hub.sign(state))
        #expect(throws: SigningError.wrongDevice("gw-001", expected: "gw-002")) {
            try hub.publicKey.open(envelope, for: "gw-002")
        }
    }

    @Test func malformedEnvelopesAreRefusedWithTheReason() throws {
        for body in ["", "{}", #"{"payload":"!!","signature":"","keyId":"x"}"#, "[1,2]"] {
            #expect(throws: SigningError.self) {
                try hub.publicKey.open(Data(body.utf8), for: "gw-001")
            }
        }
        let unsigned = SignedEnvelope(
            payload: try FleetJSON.encode(state).base64EncodedString(), signature: "", keyId: hub.publicKey.keyId)
        #expect(throws: SigningError.badSignature) {
            try hub.publicKey.open(FleetJSON.encode(unsigned), for: "gw-001")
        }
    }

    @Test func keysSurviveTheirTextForm() throws {
        let restored = try HubSigningKey(base64PrivateKey: hub.base64PrivateKey + "\n")
        #expect(restored.publicKey == hub.publicKey)
        #expect(try HubPublicKey(base64: hub.publicKey.base64) == hub.publicKey)
        #expect(throws: SigningError.malformedKey("the hub public key is not a 32-byte Ed25519 public key")) {
            try HubPublicKey(base64: "AAAA")
        }
        #expect(throws: SigningError.malformedKey("the hub signing key is not base64")) {
            try HubSigningKey(base64PrivateKey: "not base64!")
        }
    }
}
