import Crypto
import Foundation
import _CryptoExtras

/// Broker logins for devices and the hub, in the form Eclipse Mosquitto's
/// `password_file` reads (`$7$`: PBKDF2-SHA512, 101 rounds, 12-byte salt, as
/// `mosquitto_passwd` writes), so the hub never needs to keep a plaintext password.
/// The low round count is mosquitto's own default, and harmless here: every
/// password the hub makes is 192 random bits, which no guessing can reach.
public enum BrokerCredentials {
    /// A new random password: 24 random bytes, base64url.
    public static func newPassword() -> String {
        let bytes = SymmetricKey(size: .init(bitCount: 192)).withUnsafeBytes { Data($0) }
        return bytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The `$7$…` hash of `password`, with a random salt unless one is given.
    public static func mosquittoHash(of password: String, salt: Data? = nil) throws -> String {
        let salt = salt ?? SymmetricKey(size: .init(bitCount: 96)).withUnsafeBytes { Data($0) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Data(password.utf8), salt: salt, using: .sha512, outputByteCount: 64, unsafeUncheckedRounds: 101)
        let hash = key.withUnsafeBytes { Data($0) }
        return "$7$101$\(salt.base64EncodedString())$\(hash.base64EncodedString())"
    }
}
