import ArgumentParser
import FleetHub

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a hub workspace: database, blob store, signing key, settings.", discussion: "EXAMPLES:\n  fleethub init --broker mqtts://broker.example:8883 --public-url http://hub.example:8080\n  fleethub init --workspace ./hub --broker mqtt://127.0.0.1:1883 --insecure")

    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "The MQTT broker devices and the hub use (mqtts://; mqtt:// needs --insecure).")
    var broker = "mqtts://127.0.0.1:8883"
    @Option(name: .customLong("public-url"), help: "The hub's HTTP base URL as devices reach it.")
    var publicURL = "http://127.0.0.1:8080"
    @OptionGroup var hosts: BrokerHostOptions
    @Flag(help: "Allow a plain mqtt:// broker: no encryption, no authentication of the broker. For tests only.")
    var insecure = false

    func run() throws {
        let created = try Workspace.create(
            at: workspace.root, config: HubConfig(broker: broker, publicURL: publicURL, insecure: insecure ? true : nil))
        try CertificateAuthority.create(in: created.certificateAuthorityFolder, brokerHosts: hosts.hosts(brokerURL: broker))
        _ = try HTTPAccess.load(from: created)
        print("created workspace \(created.root.path) with its certificate authority")
        if insecure { Output.warn("plain MQTT allowed (--insecure): fleet traffic is neither encrypted nor authenticated") }
        print("hub public key: \(created.signingKey.publicKey.base64)")
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show or change the workspace settings.", discussion: "EXAMPLES:\n  fleethub config show\n  fleethub config set public-url http://hub.example:8080", subcommands: [Set.self, Show.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a setting: broker, public-url, broker-username, broker-password, insecure. A new public-url is republished to every device.", discussion: "EXAMPLES:\n  fleethub config set public-url http://hub.example:8080\n  fleethub config set broker mqtts://broker.example:8883")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The setting.") var key: String
        @Argument(help: "Its new value.") var value: String

        func run() async throws {
            let opened = try workspace.open()
            try opened.set(key, to: value)
            if key == HubConfig.Key.publicURL.rawValue {
                try await Publishing.publish(DeploymentStore(workspace: opened).restage(), workspace: opened)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the settings (the password is hidden).", discussion: "EXAMPLES:\n  fleethub config show\n  fleethub config show --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let opened = try workspace.open()
            var config = try opened.config()
            if config.brokerPassword != nil { config.brokerPassword = "********" }
            if output.json {
                try Output.json(config)
            } else {
                print("broker: \(config.broker)")
                print("public-url: \(config.publicURL)")
                if let user = config.brokerUsername { print("broker-username: \(user)") }
                if config.allowsPlainMQTT { print("insecure: true (plain MQTT allowed)") }
                print("hub public key: \(opened.signingKey.publicKey.base64)")
            }
        }
    }
}
