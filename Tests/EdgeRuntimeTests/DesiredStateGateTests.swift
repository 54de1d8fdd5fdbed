import EdgeRuntime
import FleetCore
import Foundation
import Testing

@Suite struct DesiredStateGateTests {
    let hub = HubSigningKey()
    var gate: DesiredStateGate { DesiredStateGate(deviceId: "gw-001", hubKey: hub.publicKey) }

    func state(revision: Int, device: String = "gw-001", modules: [ModuleSpec] = []) -> DesiredState {
        DesiredState(deviceId: device, revision: revision, issuedAt: Date(), deployments: [], modules: modules)
    }

    func envelope(_ state: DesiredState, key: HubSigningKey? = nil) throws -> Data {
        try FleetJSON.encode(try (key ?? hub).sign(state))
    }

    @Test func acceptsASignedNewerState() throws {
        let result = gate.check(try envelope(state(revision: 3)), acceptedRevision: 2)
        #expect(try result.get().revision == 3)
    }

    @Test func refusesReplayAndDowngrade() throws {
        let message = try envelope(state(revision: 3))
        #expect(gate.check(message, acceptedRevision: 3) == .failure(.notNewer(revision: 3, accepted: 3)))
        #expect(gate.check(message, acceptedRevision: 5) == .failure(.notNewer(revision: 3, accepted: 5)))
    }

    @Test func refusesAStateSignedByAnotherKey() throws {
        let forger = HubSigningKey()
        var forged = try forger.sign(state(revision: 9))
        forged.keyId = hub.publicKey.keyId
        #expect(gate.check(try FleetJSON.encode(forged), acceptedRevision: 0) == .failure(.unverified(.badSignature)))
    }

    @Test func refusesAnAlteredPayload() throws {
        var envelope = try hub.sign(state(revision: 4))
        envelope.payload = try FleetJSON.encode(state(revision: 400)).base64EncodedString()
        #expect(gate.check(try FleetJSON.encode(envelope), acceptedRevision: 0) == .failure(.unverified(.badSignature)))
    }

    @Test func refusesMalformedAndMisaddressedMessages() throws {
        guard case .failure(.unverified(.malformedEnvelope)) = gate.check(Data("not json".utf8), acceptedRevision: 0) else {
            Issue.record("malformed message was not refused as malformed")
            return
        }
        let other = gate.check(try envelope(state(revision: 1, device: "gw-002")), acceptedRevision: 0)
        #expect(other == .failure(.unverified(.wrongDevice("gw-002", expected: "gw-001"))))
    }

    @Test func refusesModuleNamesThatAreNotFileNames() throws {
        let bundle = BundleReference(digest: ContentDigest(of: Data()), size: 0, url: "http://hub/x")
        let bad = ModuleSpec(name: "../etc", kind: .process, bundle: bundle)
        #expect(gate.check(try envelope(state(revision: 1, modules: [bad])), acceptedRevision: 0) == .failure(.badModuleName("../etc")))
    }
}
