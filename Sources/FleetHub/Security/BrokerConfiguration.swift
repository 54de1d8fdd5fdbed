import FleetCore
import Foundation

/// Writes a complete Eclipse Mosquitto configuration for the fleet: one TLS listener
/// that requires a client certificate from the hub's CA, takes each client's identity
/// from its certificate's common name, checks the CA's revocation list, allows no
/// anonymous client, and an ACL that confines every device to its own topics
/// (docs/contract.md) while the hub identity may use all of `fleet/v1/`.
public struct BrokerConfiguration: Sendable {
    public let workspace: Workspace
    /// `HOST:PORT` to listen on; nil takes the port of the workspace's broker URL, on
    /// every interface.
    public var listen: String?
    /// The user the broker runs as (mosquitto's `user`); it must be able to read the key.
    public var runAs: String?

    public init(workspace: Workspace, listen: String? = nil, runAs: String? = nil) {
        self.workspace = workspace
        self.listen = listen
        self.runAs = runAs
    }

    /// Where everything was written.
    public struct Written: Equatable, Sendable {
        public var configFile: String
        public var aclFile: String
        public var revocationListFile: String
    }

    /// Writes `mosquitto.conf`, `acl`, `ca.crt`, `broker.crt`, `broker.key` (0600) and
    /// `crl.pem` into `folder`, replacing older versions.
    @discardableResult
    public func write(to folder: URL) throws -> Written {
        // As root, mosquitto switches to another user before reading its files.
        let owner = try getuid() == 0 ? brokerUser() : nil
        let authority = try workspace.certificateAuthority()
        let address = try HubConfig.checkedBroker(try workspace.config().broker)
        let (host, port) = try listenAddress(default: address.port)
        let folder = folder.standardizedFileURL
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        func copy(_ source: String, to name: String, secret: Bool = false) throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: source))
            if secret {
                try writeSecretFile(data, to: path(name))
            } else {
                try data.write(to: URL(fileURLWithPath: path(name)), options: .atomic)
            }
        }
        try copy(authority.certificatePath, to: "ca.crt")
        try copy(authority.brokerCertificatePath, to: "broker.crt")
        try copy(authority.brokerKeyPath, to: "broker.key", secret: true)
        try copy(authority.revocationListPath, to: "crl.pem")
        try workspace.record(brokerFolder: folder.path)
        try Data(Self.acl.utf8).write(to: URL(fileURLWithPath: path("acl")), options: .atomic)
        var lines = [
            "# Written by `fleethub broker-config`. Rerun it after `fleethub device revoke`, then restart the broker.",
            "per_listener_settings false",
            "allow_anonymous false",
            "acl_file \(path("acl"))",
            "persistence true",
            "persistence_location \(folder.path)/",
        ]
        if let runAs { lines.append("user \(runAs)") }
        lines += [
            "",
            host.map { "listener \(port) \($0)" } ?? "listener \(port)",
            "cafile \(path("ca.crt"))",
            "certfile \(path("broker.crt"))",
            "keyfile \(path("broker.key"))",
            "crlfile \(path("crl.pem"))",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            // The client id is the certificate's identity too: no client can take over another's session.
            "use_username_as_clientid true",
        ]
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(
            to: URL(fileURLWithPath: path("mosquitto.conf")), options: .atomic)
        if let owner {
            // The key stays 0600, now the broker user's; the folder holds its persistence file.
            for file in [path("broker.key"), folder.path] where chown(file, owner.uid, owner.gid) != 0 {
                throw SecurityError.cannotHandOver(file, user: owner.name, reason: String(cString: strerror(errno)))
            }
        }
        return Written(configFile: path("mosquitto.conf"), aclFile: path("acl"), revocationListFile: path("crl.pem"))
    }

    /// A device (`%u`, its certificate's common name, is its id) may only read its
    /// desired state and log requests and write its own reports and log replies; the hub
    /// reads and writes everything.
    static let acl = """
        # Written by `fleethub broker-config`. Identities are certificate common names.
        \(HubIdentity.allCases.map { "user \($0.rawValue)\ntopic readwrite \(Topics.namespace)/#" }.joined(separator: "\n\n"))

        # every device: %u is its certificate's common name, which is its device id
        \(deviceRules.joined(separator: "\n"))

        """

    /// The ACL lines that confine each device (`%u` = its broker identity = its id).
    static let deviceRules = [
        "pattern read \(Topics.desired("%u"))",
        "pattern write \(Topics.reported("%u"))",
        "pattern write \(Topics.connection("%u"))",
        "pattern read \(Topics.logRequest("%u"))",
        "pattern write \(Topics.logReply("%u", "+"))",
    ]

    /// The user `--run-as` names, whom the broker's key and folder are given to.
    private func brokerUser() throws -> (name: String, uid: uid_t, gid: gid_t) {
        guard let runAs else { throw SecurityError.brokerUserNeeded }
        guard let entry = getpwnam(runAs) else { throw SecurityError.unknownUser(runAs) }
        return (runAs, entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    private func listenAddress(default port: Int) throws -> (host: String?, port: Int) {
        guard let listen else { return (nil, port) }
        guard let parsed = ListenAddress(listen) else { throw SecurityError.invalidListenAddress(listen) }
        return (parsed.host.isEmpty ? nil : parsed.host, parsed.port)
    }
}
