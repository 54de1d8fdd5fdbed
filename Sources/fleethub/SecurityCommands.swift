import ArgumentParser
import FleetCore
import FleetHub
import Foundation

/// `--broker-host`, taken by the commands that issue the broker's certificate.
struct BrokerHostOptions: ParsableArguments {
    @Option(
        name: .customLong("broker-host"),
        help: "A host name or IP address devices use to reach the broker; repeatable (default: 127.0.0.1, localhost and the broker URL's host).")
    var brokerHosts: [String] = []

    func hosts(brokerURL: String) throws -> [String] {
        if !brokerHosts.isEmpty { return brokerHosts }
        let host = try BrokerAddress(brokerURL).host
        return (["127.0.0.1", "localhost"] + [host]).reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }
}

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "The hub's certificate authority.", discussion: "EXAMPLES:\n  fleethub ca init\n  fleethub ca broker-cert --broker-host broker.example\n  fleethub ca crl",
        subcommands: [Init.self, BrokerCertificate.self, RevocationList.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the CA of a workspace made before it had one: CA, hub, broker and (for an https:// public URL) HTTPS certificates, empty CRL.", discussion: "EXAMPLES:\n  fleethub ca init\n  fleethub ca init --broker-host broker.example --broker-host 10.0.0.5")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var hosts: BrokerHostOptions

        func run() throws {
            let opened = try workspace.open()
            let authority = try CertificateAuthority.create(
                in: opened.certificateAuthorityFolder, brokerHosts: hosts.hosts(brokerURL: opened.config().broker))
            print("created certificate authority \(authority.certificatePath)")
            if try opened.httpsTrustedCA() == authority.certificatePath, let https = try opened.https() {
                print("HTTPS certificate: \(https.certificatePath)")
            }
        }
    }

    struct BrokerCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "broker-cert", abstract: "Issue a new broker server certificate for other host names or addresses.", discussion: "EXAMPLES:\n  fleethub ca broker-cert --broker-host broker.example --broker-host 10.0.0.5")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var hosts: BrokerHostOptions

        func run() throws {
            let opened = try workspace.open()
            let authority = try opened.certificateAuthority()
            try authority.issueBrokerCertificate(hosts: hosts.hosts(brokerURL: opened.config().broker))
            print("wrote \(authority.brokerCertificatePath); run `fleethub broker-config` again and restart the broker")
        }
    }

    struct RevocationList: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl",
            abstract: "Rewrite the revocation list, in the CA and the broker's folder (it lapses after --days; the broker then refuses everyone; `serve` renews it 60 days ahead).",
            discussion: "EXAMPLES:\n  fleethub ca crl\n  fleethub ca crl --days 90")
        @OptionGroup var workspace: WorkspaceOptions
        @Option(help: "How many days the list stays valid.") var days = CertificateAuthority.revocationListValidityDays

        func run() throws {
            guard days > 0 else { throw ValidationError("--days must be at least 1, not \(days)") }
            for path in try RevocationListRenewal(workspace: workspace.open()).renew(validityDays: days) {
                print("wrote \(path)")
            }
            print("restart the broker: it reads the list only at start")
        }
    }
}

struct BrokerConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker-config",
        abstract: "Write a complete mosquitto configuration: TLS with client certificates, revocation list, per-device ACL.", discussion: "EXAMPLES:\n  fleethub broker-config --out /etc/mosquitto/fleet --run-as mosquitto\n  fleethub broker-config --out ./broker --listen 127.0.0.1:8883 --run-as \"$(id -un)\"")
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "The folder to write mosquitto.conf, acl, certificates, key and CRL into.") var out: String
    @Option(help: "HOST:PORT to listen on (default: every interface, the broker URL's port).") var listen: String?
    @Option(name: .customLong("run-as"), help: "The user mosquitto runs as; it must be able to read the key.")
    var runAs: String?

    func run() throws {
        let written = try BrokerConfiguration(workspace: workspace.open(), listen: listen, runAs: runAs)
            .write(to: URL(fileURLWithPath: out))
        print("wrote \(written.configFile); start the broker with: mosquitto -c \(written.configFile)")
    }
}

struct AccessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access", abstract: "Who may use the hub's HTTP API.", discussion: "EXAMPLES:\n  fleethub access show\n  fleethub access public-reads false", subcommands: [Show.self, PublicReads.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the admin and viewer tokens (secrets: for the operator's terminal only).", discussion: "EXAMPLES:\n  fleethub access show")
        @OptionGroup var workspace: WorkspaceOptions

        func run() throws {
            let access = try HTTPAccess.load(from: workspace.open())
            print("admin token: \(access.adminToken)")
            print("viewer token: \(access.viewerToken)")
            print("public reads: \(access.publicReads)")
        }
    }

    struct PublicReads: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "public-reads", abstract: "Let anyone read the dashboard and JSON API without a token (true), or not (false).", discussion: "EXAMPLES:\n  fleethub access public-reads true\n  fleethub access public-reads false")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "true or false.") var allowed: Bool

        func run() throws {
            let opened = try workspace.open()
            var access = try HTTPAccess.load(from: opened)
            access.publicReads = allowed
            try access.save(in: opened)
        }
    }
}

extension DeviceCommand {
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a device's certificate and token and remove it from the fleet; then rerun broker-config.", discussion: "EXAMPLES:\n  fleethub device revoke gw-002")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The device id.") var id: String

        func run() async throws {
            let opened = try workspace.open()
            let outcome = try DeviceRevocation(workspace: opened).revoke(id: id)
            print("revoked device \(id) (certificates: \(outcome.revokedSerials.joined(separator: ", ")))")
            print("run `fleethub broker-config` again and restart the broker so it loads the new revocation list")
            try await Publishing.publish(outcome.change, workspace: opened)
        }
    }
}
