import Crypto
import Foundation

/// The hub's Ed25519 key pair. Devices trust its public half, and accept a desired
/// state only when this key signed its exact bytes.
public struct HubSigningKey: Sendable {
    /// The key itself, made once: a fan-out signs 10,000 states, and making the key
    /// from its bytes derives the public half again each time.
    private let key: SealedPrivateKey
    /// The public half, for device configs.
    public let publicKey: HubPublicKey

    /// A new random key.
    public init() {
        self.init(key: Curve25519.Signing.PrivateKey())
    }

    /// Reads a key written by `base64PrivateKey`.
    public init(base64PrivateKey text: String) throws {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SigningError.malformedKey("the hub signing key is not base64")
        }
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw SigningError.malformedKey("the hub signing key is not a 32-byte Ed25519 key")
        }
        self.init(key: key)
    }

    private init(key: Curve25519.Signing.PrivateKey) {
        self.key = SealedPrivateKey(key)
        self.publicKey = HubPublicKey(raw: key.publicKey.rawRepresentation)
    }

    /// The private key as base64 of its 32 raw bytes; keep it in a 0600 file.
    public var base64PrivateKey: String { key.value.rawRepresentation.base64EncodedString() }

    /// Signs the exact bytes of `state`'s JSON and wraps them in an envelope.
    public func sign(_ state: DesiredState) throws -> SignedEnvelope {
        let payload = try FleetJSON.encode(state)
        let signature = try key.value.signature(for: payload)
        return SignedEnvelope(
            payload: payload.base64EncodedString(),
            signature: signature.base64EncodedString(),
            keyId: publicKey.keyId)
    }
}

/// Crypto's private key type is an immutable value that does not declare itself `Sendable`;
/// this box shares it across the hub's tasks.
private final class SealedPrivateKey: @unchecked Sendable {
    let value: Curve25519.Signing.PrivateKey

    init(_ value: Curve25519.Signing.PrivateKey) {
        self.value = value
    }
}

/// The public half of the hub's signing key, as a device holds it.
public struct HubPublicKey: Sendable, Equatable {
    /// The 32 raw bytes; Crypto's key type is not `Sendable`, so it is rebuilt on use.
    private let raw: Data
    private var key: Curve25519.Signing.PublicKey {
        // The bytes were validated when this value was made.
        try! Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    init(raw: Data) {
        self.raw = raw
    }

    /// Reads a key written by `base64`.
    public init(base64 text: String) throws {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SigningError.malformedKey("the hub public key is not base64")
        }
        guard (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw SigningError.malformedKey("the hub public key is not a 32-byte Ed25519 public key")
        }
        self.raw = raw
    }

    /// Base64 of the 32 raw bytes.
    public var base64: String { raw.base64EncodedString() }

    /// A short name for the key: the first 16 hex digits of the sha256 of its bytes.
    public var keyId: String { String(SHA256.hash(data: raw).hexString.prefix(16)) }

    /// Checks `envelopeData` (the JSON of a `SignedEnvelope`) and returns the desired
    /// state it carries, addressed to `deviceId`. Revision checks are the caller's.
    public func open(_ envelopeData: Data, for deviceId: String) throws -> DesiredState {
        let envelope: SignedEnvelope
        do {
            envelope = try FleetJSON.decode(SignedEnvelope.self, from: envelopeData)
        } catch {
            throw SigningError.malformedEnvelope("not a signed envelope {payload, signature, keyId}: \(error)")
        }
        guard envelope.keyId == keyId else {
            throw SigningError.unknownKey(envelope.keyId, expected: keyId)
        }
        guard let payload = Data(base64Encoded: envelope.payload) else {
            throw SigningError.malformedEnvelope("payload is not base64")
        }
        guard let signature = Data(base64Encoded: envelope.signature) else {
            throw SigningError.malformedEnvelope("signature is not base64")
        }
        guard key.isValidSignature(signature, for: payload) else {
            throw SigningError.badSignature
        }
        let state: DesiredState
        do {
            state = try FleetJSON.decode(DesiredState.self, from: payload)
        } catch {
            throw SigningError.malformedEnvelope("the signed payload is not a desired state: \(error)")
        }
        guard state.deviceId == deviceId else {
            throw SigningError.wrongDevice(state.deviceId, expected: deviceId)
        }
        return state
    }
}

/// The signed desired-state envelope (docs/contract.md).
public struct SignedEnvelope: Codable, Equatable, Sendable {
    /// Base64 of the payload's exact JSON bytes.
    public var payload: String
    /// Base64 Ed25519 signature over those bytes.
    public var signature: String
    public var keyId: String

    public init(payload: String, signature: String, keyId: String) {
        self.payload = payload
        self.signature = signature
        self.keyId = keyId
    }
}

/// Why a key could not be read or a desired state was refused.
public enum SigningError: Error, Equatable, CustomStringConvertible {
    case malformedKey(String)
    case malformedEnvelope(String)
    case unknownKey(String, expected: String)
    case badSignature
    case wrongDevice(String, expected: String)

    public var description: String {
        switch self {
        case .malformedKey(let why): "unusable key: \(why)"
        case .malformedEnvelope(let why): "malformed desired state: \(why)"
        case .unknownKey(let got, let expected):
            "desired state signed with key '\(got)', but this device trusts only '\(expected)'; check hub.publicKey in the device config"
        case .badSignature: "desired state signature does not verify: the message was forged or altered"
        case .wrongDevice(let got, let expected):
            "desired state is addressed to device '\(got)', not to this device '\(expected)'"
        }
    }
}
