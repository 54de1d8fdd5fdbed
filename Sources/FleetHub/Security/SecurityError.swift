import Foundation

/// Why a certificate, token or broker-configuration step failed, and what to do.
public enum SecurityError: Error, Equatable, CustomStringConvertible {
    case noCertificateAuthority(String)
    case certificateAuthorityExists(String)
    case unreadable(String, reason: String)
    case invalidHost(String)
    case noBrokerHosts
    case nothingToRevoke(String)
    case missingOpenSSL
    case revocationListFailed(String)
    case invalidRevocationList(String, reason: String)
    case plainBrokerRefused(String)
    case invalidListenAddress(String)
    case brokerUserNeeded
    case unknownUser(String)
    case cannotHandOver(String, user: String, reason: String)
    case incompleteTLSSettings(missing: String)
    case unusableTLSFiles(certificate: String, key: String, reason: String)

    public var description: String {
        switch self {
        case .noCertificateAuthority(let folder):
            "this workspace has no certificate authority (\(folder)); run `fleethub ca init`"
        case .certificateAuthorityExists(let folder):
            "\(folder) already holds a certificate authority; use it, or move it away to start over (every device then needs a new config)"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .invalidHost(let host):
            "'\(host)' is neither a host name nor an IP address; give the names and addresses devices use to reach the broker"
        case .noBrokerHosts: "the broker certificate needs at least one host name or IP address (--broker-host)"
        case .nothingToRevoke(let name): "no valid certificate was issued to '\(name)'; nothing revoked"
        case .missingOpenSSL:
            "the `openssl` program is needed to write the certificate revocation list; install Debian's `openssl` package"
        case .revocationListFailed(let output): "`openssl ca -gencrl` failed: \(output)"
        case .invalidRevocationList(let path, let reason):
            "\(path) is not a usable certificate revocation list: \(reason); rewrite it with `fleethub ca crl`"
        case .plainBrokerRefused(let broker):
            "refusing plain MQTT to \(broker): anyone on the network could read and forge fleet traffic; use an mqtts:// broker, or `fleethub config set insecure true` for a test setup"
        case .invalidListenAddress(let text): "--listen '\(text)' is not HOST:PORT (e.g. 0.0.0.0:8883)"
        case .brokerUserNeeded:
            "run as root, broker-config needs --run-as USER, the user mosquitto runs as (`mosquitto` on Debian): mosquitto started as root switches to that user before it reads its key, which is then made readable by that user only"
        case .unknownUser(let user): "--run-as \(user): no such user on this machine"
        case .cannotHandOver(let path, let user, let reason): "cannot give \(path) to user \(user): \(reason)"
        case .incompleteTLSSettings(let missing):
            "the operator's HTTPS certificate needs both tls-cert and tls-key; set `fleethub config set \(missing) PATH`, or clear the other to use the hub CA's certificate"
        case .unusableTLSFiles(let certificate, let key, let reason):
            "cannot serve HTTPS with the certificate \(certificate) and key \(key): \(reason); give a PEM certificate (with its chain) and its PEM private key"
        }
    }
}
