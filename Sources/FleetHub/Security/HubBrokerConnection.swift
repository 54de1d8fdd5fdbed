import FleetCore
import Foundation
import Logging

extension Workspace {
    /// The folder of the hub's certificate authority.
    public var certificateAuthorityFolder: URL { root.appendingPathComponent("ca") }

    /// The workspace's certificate authority; `SecurityError.noCertificateAuthority` if
    /// `fleethub ca init` never ran.
    public func certificateAuthority() throws -> CertificateAuthority {
        try CertificateAuthority.open(in: certificateAuthorityFolder)
    }

    /// How the hub itself connects to the broker as `identity`: over TLS with that
    /// identity's client certificate (issued here if an older CA lacks it), verifying the
    /// broker against the hub's CA; the broker makes the identity the client id. A plain
    /// `mqtt://` broker is refused unless the settings say `insecure: true`, and then a
    /// warning is logged on every connection. It reconnects on
    /// `BackoffSchedule.hubReconnect`, and keeps as many publishes in flight as
    /// `DesiredStatePublisher` sends at once.
    public func brokerConnection(as identity: HubIdentity, logger: Logger) throws -> MQTTConfiguration {
        let config = try config()
        let address = try HubConfig.checkedBroker(config.broker)
        var configuration = MQTTConfiguration(
            host: address.host, port: address.port,
            clientId: "\(identity.rawValue.replacingOccurrences(of: ":", with: "-"))-\(UUID().uuidString.prefix(8))",
            reconnectBackoff: .hubReconnect, publishesInFlight: DesiredStatePublisher.publishesInFlight, logger: logger)
        if address.tls {
            let authority = try certificateAuthority()
            try authority.issueCertificate(of: identity)
            configuration.clientId = identity.rawValue
            configuration.tls = MQTTTLS(
                caFile: authority.certificatePath, certFile: authority.certificatePath(of: identity),
                keyFile: authority.keyPath(of: identity))
        } else {
            guard config.allowsPlainMQTT else { throw SecurityError.plainBrokerRefused(config.broker) }
            logger.warning("plain MQTT to \(config.broker) (insecure: true): fleet traffic is neither encrypted nor authenticated")
            configuration.username = config.brokerUsername
            configuration.password = config.brokerPassword
        }
        return configuration
    }
}
