import FleetCore
import Foundation
import FleetSQL

/// Writes the files that make an Eclipse Mosquitto broker enforce the contract's
/// access rules (docs/contract.md): a `password_file` with every device's login (and the
/// hub's, when the workspace has one), and an `acl_file` that lets a device read only
/// its own desired state and write only its own reports, and the hub all of `fleet/v1/`.
/// For a plain-MQTT (insecure) setup; `BrokerConfiguration` writes the TLS one.
public struct BrokerFiles: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// The two files' paths, and the mosquitto.conf lines that use them.
    public struct Written: Equatable, Sendable {
        public var passwordFile: String
        public var aclFile: String
        public var configLines: String
    }

    /// Writes `passwords` and `acl` into `folder` (0600), replacing older versions.
    public func write(to folder: URL) throws -> Written {
        let config = try workspace.config()
        var lines: [String] = []
        if let user = config.brokerUsername, let password = config.brokerPassword {
            lines.append("\(user):\(try BrokerCredentials.mosquittoHash(of: password))")
        }
        let devices = try workspace.database.read { db in
            try db.rows("SELECT deviceId, passwordHash FROM deviceCredential ORDER BY deviceId")
        }
        lines += devices.map { "\($0["deviceId"] as String):\($0["passwordHash"] as String)" }

        var acl: [String] = []
        if let user = config.brokerUsername {
            acl += ["user \(user)", "topic readwrite \(Topics.namespace)/#", ""]
        }
        acl += ["# every device: reads its desired state, writes its reports (%u is the login, which is the device id)"]
            + BrokerConfiguration.deviceRules

        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let passwordFile = folder.appendingPathComponent("passwords").path
        let aclFile = folder.appendingPathComponent("acl").path
        try writeSecretFile(Data((lines.joined(separator: "\n") + "\n").utf8), to: passwordFile)
        try writeSecretFile(Data((acl.joined(separator: "\n") + "\n").utf8), to: aclFile)
        return Written(
            passwordFile: passwordFile, aclFile: aclFile,
            configLines: "allow_anonymous false\npassword_file \(passwordFile)\nacl_file \(aclFile)")
    }
}
