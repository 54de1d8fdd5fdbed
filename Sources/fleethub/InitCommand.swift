import ArgumentParser
import FleetHub

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a hub workspace: database, blob store, signing key, settings.", discussion: "EXAMPLES:\n  fleethub init --broker mqtts://broker.example:8883 --public-url https://hub.example:8080\n  fleethub init --public-url https://hub.example --tls-cert hub.crt --tls-key hub.key --tls-ca corp-ca.crt\n  fleethub init --workspace ./hub --broker mqtt://127.0.0.1:1883 --insecure --public-url http://127.0.0.1:8080 --insecure-http\n  fleethub init --blobs s3://fleet-blobs/hub --blobs-endpoint http://127.0.0.1:8333 --blobs-credentials hub-s3.ini")

    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "The MQTT broker devices and the hub use (mqtts://; mqtt:// needs --insecure).")
    var broker = "mqtts://127.0.0.1:8883"
    @Option(
        name: .customLong("public-url"),
        help: "The hub's base URL as devices reach it (https://; the hub's CA issues its certificate for the URL's host; http:// needs --insecure-http).")
    var publicURL = "https://127.0.0.1:8080"
    @OptionGroup var hosts: BrokerHostOptions
    @Flag(help: "Allow a plain mqtt:// broker: no encryption, no authentication of the broker. For tests only.")
    var insecure = false
    @Flag(name: .customLong("insecure-http"), help: "Allow an http:// public URL: device tokens and bundles in clear text. For tests only.")
    var insecureHTTP = false
    @OptionGroup var tls: TLSFileOptions
    @Option(help: "The hub's database: postgres://user[:password]@host:port/database for one that several hub instances share (password also from PGPASSWORD). Default: a SQLite file in the workspace.")
    var database: String?
    @OptionGroup var blobs: BlobOptions

    func run() throws {
        var config = HubConfig(broker: broker, publicURL: publicURL, insecure: insecure ? true : nil, insecureHTTP: insecureHTTP ? true : nil)
        try tls.apply(to: &config)
        if let database { try config.set(.database, to: database) }
        try blobs.apply(to: &config)
        let created = try Workspace.create(at: workspace.root, config: config)
        try CertificateAuthority.create(in: created.certificateAuthorityFolder, brokerHosts: hosts.hosts(brokerURL: broker))
        _ = try HTTPAccess.load(from: created)
        print("created workspace \(created.root.path) with its certificate authority")
        if database != nil { print("database: \(created.database.location)") }
        if let bucket = try created.blobs.bucket() { print("blobs: \(bucket.location)") }
        if let https = try created.https() { print("HTTPS certificate: \(https.certificatePath)") }
        if insecure { Output.warn("plain MQTT allowed (--insecure): fleet traffic is neither encrypted nor authenticated") }
        if insecureHTTP { Output.warn("plain HTTP allowed (--insecure-http): device tokens and bundles cross the network in clear text") }
        print("hub public key: \(created.signingKey.publicKey.base64)")
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show or change the workspace settings.", discussion: "EXAMPLES:\n  fleethub config show\n  fleethub config set public-url https://hub.example:8080", subcommands: [Set.self, Show.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a setting: broker, public-url, broker-username, broker-password, insecure, insecure-http, tls-cert, tls-key, tls-ca, drift-alert-psi, bundle-urls, blobs, blobs-endpoint, blobs-region, blobs-credentials (an empty value clears tls-cert and the ones after it). A new public-url or bundle-urls is republished to every device; serve reads drift-alert-psi and the blobs settings when it starts.", discussion: "EXAMPLES:\n  fleethub config set public-url https://hub.example:8080\n  fleethub config set tls-cert /etc/fleethub/hub.crt\n  fleethub config set broker mqtts://broker.example:8883\n  fleethub config set bundle-urls https://hub-a:8080,https://hub-b:8080\n  fleethub config set blobs-endpoint http://s3.internal:8333\n  fleethub config set blobs s3://fleet-blobs/hub")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The setting.") var key: String
        @Argument(help: "Its new value.") var value: String

        func run() async throws {
            let opened = try workspace.open()
            try opened.set(key, to: value)
            if key == HubConfig.Key.publicURL.rawValue || key == HubConfig.Key.bundleURLs.rawValue {
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
            if config.database != nil { config.database = opened.database.location.description }
            if output.json {
                try Output.json(config)
            } else {
                print("broker: \(config.broker)")
                print("public-url: \(config.publicURL)")
                if let user = config.brokerUsername { print("broker-username: \(user)") }
                if config.allowsPlainMQTT { print("insecure: true (plain MQTT allowed)") }
                if config.allowsPlainHTTP { print("insecure-http: true (plain HTTP allowed)") }
                if let certificate = config.tlsCertificate { print("tls-cert: \(certificate)") }
                if let key = config.tlsKey { print("tls-key: \(key)") }
                if let ca = config.tlsCA { print("tls-ca: \(ca)") }
                if let psi = config.driftAlertPSI { print("drift-alert-psi: \(psi)") }
                print("database: \(opened.database.location)")
                if let urls = config.bundleURLs { print("bundle-urls: \(urls.joined(separator: ","))") }
                print("blobs: \(config.blobs ?? "local (\(opened.blobs.root.path))")")
                if let endpoint = config.blobsEndpoint { print("blobs-endpoint: \(endpoint)") }
                if let region = config.blobsRegion { print("blobs-region: \(region)") }
                if let credentials = config.blobsCredentials { print("blobs-credentials: \(credentials)") }
                print("hub public key: \(opened.signingKey.publicKey.base64)")
            }
        }
    }
}

/// `--blobs`, `--blobs-endpoint`, `--blobs-region`, `--blobs-credentials`: a bucket that
/// every `serve` instance reads the blobs from, instead of the workspace folder.
struct BlobOptions: ParsableArguments {
    @Option(help: "Keep the blobs in this S3 bucket (s3://BUCKET/PREFIX) instead of the workspace folder (local, the default).")
    var blobs: String?
    @Option(name: .customLong("blobs-endpoint"), help: "The bucket's S3 endpoint, e.g. http://127.0.0.1:8333 (default: AWS's regional one).")
    var endpoint: String?
    @Option(name: .customLong("blobs-region"), help: "The bucket's signing region (default: us-east-1).")
    var region: String?
    @Option(
        name: .customLong("blobs-credentials"),
        help: "An AWS shared-credentials file (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials).")
    var credentials: String?

    func validate() throws {
        if blobs == nil, endpoint != nil || region != nil || credentials != nil {
            throw ValidationError("--blobs-endpoint, --blobs-region and --blobs-credentials need --blobs s3://BUCKET/PREFIX")
        }
    }

    func apply(to config: inout HubConfig) throws {
        if let endpoint { try config.set(.blobsEndpoint, to: endpoint) }
        if let region { try config.set(.blobsRegion, to: region) }
        if let credentials { try config.set(.blobsCredentials, to: credentials) }
        if let blobs { try config.set(.blobs, to: blobs) }
    }
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`: the operator's own HTTPS certificate.
struct TLSFileOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS with this PEM certificate (and chain) instead of one from the hub's CA.")
    var certificate: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.")
    var key: String?
    @Option(name: .customLong("tls-ca"), help: "The CA devices trust for --tls-cert (default: their system's trust store).")
    var ca: String?

    func validate() throws {
        if (certificate == nil) != (key == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if ca != nil, certificate == nil { throw ValidationError("--tls-ca needs --tls-cert and --tls-key") }
    }

    func apply(to config: inout HubConfig) throws {
        if let certificate { try config.set(.tlsCertificate, to: certificate) }
        if let key { try config.set(.tlsKey, to: key) }
        if let ca { try config.set(.tlsCA, to: ca) }
    }
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move the hub's data from its SQLite file to an empty PostgreSQL database, and use that from now on.",
        discussion: "Stop `fleethub serve` first: what it writes during the move would stay behind in the SQLite file, which is kept as a backup.\n\nEXAMPLES:\n  fleethub migrate --to postgres://fleethub@db.example:5432/fleethub")
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "The PostgreSQL database: postgres://user[:password]@host:port/database (password also from PGPASSWORD).")
    var to: String

    func run() throws {
        let opened = try workspace.open()
        let copied = try DatabaseMove(workspace: opened).move(to: to)
        for (table, rows) in copied where rows > 0 { print("\(table): \(rows) row(s)") }
        print("the hub now uses \(try workspace.open().database.location); the SQLite file stays as a backup")
    }
}
