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

    /// How the hub itself connects to the broker (publisher, health ingestion): over TLS
    /// with its own client certificate, verifying the broker against the hub's CA. A
    /// plain `mqtt://` broker is refused unless the settings say `insecure: true`, and
    /// then a warning is logged on every connection. It reconnects on
    /// `BackoffSchedule.hubReconnect`.
    public func brokerConnection(clientId: String, logger: Logger) throws -> MQTTConfiguration {
        let config = try config()
        let address = try HubConfig.checkedBroker(config.broker)
        var configuration = MQTTConfiguration(
            host: address.host, port: address.port, clientId: clientId, reconnectBackoff: .hubReconnect, logger: logger)
        if address.tls {
            let authority = try certificateAuthority()
            configuration.tls = MQTTTLS(
                caFile: authority.certificatePath, certFile: authority.hubCertificatePath, keyFile: authority.hubKeyPath)
        } else {
            guard config.allowsPlainMQTT else { throw SecurityError.plainBrokerRefused(config.broker) }
            logger.warning("plain MQTT to \(config.broker) (insecure: true): fleet traffic is neither encrypted nor authenticated")
            configuration.username = config.brokerUsername
            configuration.password = config.brokerPassword
        }
        return configuration
    }
}
