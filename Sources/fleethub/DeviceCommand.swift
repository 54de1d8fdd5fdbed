import ArgumentParser
import FleetCore
import FleetHub
import Foundation

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "The devices of the fleet.", discussion: "EXAMPLES:\n  fleethub device add gw-001 --tag site=plant-1 --out gw-001.yaml\n  fleethub device list --tag site=plant-1\n  fleethub device config gw-001 --out gw-001.yaml --force",
        subcommands: [Add.self, Config.self, Tag.self, List.self, Show.self, Logs.self, Remove.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a device and write its config file; publishes its desired state.",
            discussion: """
                All or nothing: when the config (or, with TLS, its certificate and key) cannot be written, the device is not registered. An existing --out file is not replaced without --force.

                EXAMPLES:
                  fleethub device add gw-001 --tag site=plant-1 --tag role=gateway --out gw-001.yaml
                  fleethub device add gw-002 --out /srv/configs/gw-002.yaml --data-dir /var/lib/edge-runtime --local-api 127.0.0.1:8765
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The device id (\(FleetName.rule)).") var id: String
        @Option(help: "A tag key=value; repeatable.") var tag: [String] = []
        @OptionGroup var file: DeviceConfigOptions

        func run() async throws {
            let opened = try workspace.open()
            let customise = try file.customisation()
            let change = try DeviceEnrollment(workspace: opened).add(
                id: id, tags: TagParser.parse(tag), configPath: file.out, overwrite: file.force, customise: customise)
            print("added device \(id); config written to \(file.out)")
            try await Publishing.publish(change, workspace: opened)
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Write a registered device's config file again (a lost one): new certificate and key, or broker password, and token.",
            discussion: """
                The token and broker password of any earlier config of the device stop working; its earlier certificate stays valid until it expires or the device is revoked. The hub does not keep --data-dir, --local-api or --storage: give them again.

                EXAMPLES:
                  fleethub device config gw-001 --out gw-001.yaml
                  fleethub device config gw-001 --out gw-001.yaml --force --data-dir /var/lib/edge-runtime
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The device id.") var id: String
        @OptionGroup var file: DeviceConfigOptions

        func run() throws {
            let opened = try workspace.open()
            let tls = try BrokerAddress(opened.config().broker).tls
            try DeviceEnrollment(workspace: opened).export(
                id: id, configPath: file.out, overwrite: file.force, customise: try file.customisation())
            print("wrote the config of device \(id) to \(file.out); the token of any earlier config no longer works")
            if !tls { print("its broker password is new: run `fleethub broker files --out DIR` again and reload the broker") }
        }
    }

    struct Tag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or remove a device's tags; republishes its desired state if it changed.", discussion: "EXAMPLES:\n  fleethub device tag gw-001 --tag role=gateway\n  fleethub device tag gw-001 --remove site")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The device id.") var id: String
        @Option(help: "A tag key=value to set; repeatable.") var tag: [String] = []
        @Option(help: "A tag key to remove; repeatable.") var remove: [String] = []

        func run() async throws {
            guard !tag.isEmpty || !remove.isEmpty else { throw ValidationError("give --tag key=value or --remove key") }
            let opened = try workspace.open()
            let change = try DeviceRegistry(workspace: opened).tag(id: id, set: TagParser.parse(tag), remove: remove)
            try await Publishing.publish(change, workspace: opened)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List devices.",
            discussion: """
                EXAMPLES:
                  fleethub device list
                  fleethub device list --tag site=plant-1 --json
                  fleethub device list --target "site in (plant-1, plant-2) AND role=gateway"
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var filter: TagFilterOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let matches = try filter.matcher()
            let devices = try DeviceRegistry(workspace: workspace.open()).list().filter { matches($0.tags) }
            if output.json { return try Output.json(devices) }
            Output.table(
                ["DEVICE", "REVISION", "PUBLISHED", "TAGS"],
                devices.map { [$0.id, $0.revision.map(String.init) ?? "-", $0.publishedRevision.map(String.init) ?? "-", Output.tags($0.tags)] })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a device and its desired state.", discussion: "EXAMPLES:\n  fleethub device show gw-001\n  fleethub device show gw-001 --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The device id.") var id: String

        func run() throws {
            let opened = try workspace.open()
            let registry = DeviceRegistry(workspace: opened)
            let detail = DeviceDetail(
                device: try registry.show(id: id), desired: try registry.desiredState(id: id),
                health: try FleetHealth(workspace: opened).device(id: id))
            if output.json { return try Output.json(detail) }
            print("device: \(detail.device.id)")
            print("tags: \(Output.tags(detail.device.tags))")
            print("revision: \(detail.device.revision.map(String.init) ?? "-") (published: \(detail.device.publishedRevision.map(String.init) ?? "-"))")
            for module in detail.desired?.modules ?? [] {
                print("module: \(module.name)  \(module.kind.rawValue)  \(module.desiredStatus.rawValue)  \(module.bundle.digest)")
            }
            if let health = detail.health { HealthOutput.print(health) }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the last lines of a module's log on a device, fetched over MQTT.",
            discussion: """
                The device must be online; it answers from its own log files (what `edge-runtime logs MODULE` shows there). Needs the broker ACL of this release (rerun `fleethub broker-config`).

                EXAMPLES:
                  fleethub device logs gw-001 iris-scorer
                  fleethub device logs gw-001 iris-scorer --tail 500 --timeout 30
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The device id.") var id: String
        @Argument(help: "The module name, as `fleethub device show` lists it.") var module: String
        @Option(help: "How many of the last lines (1 to \(ModuleLogRequest.maximumLines)).") var tail = 100
        @Option(help: "Seconds to wait for the device's answer.") var timeout = 10

        func run() async throws {
            let reply = try await DeviceLogs(workspace: workspace.open()).tail(
                deviceId: id, module: module, lines: tail, timeout: .seconds(max(1, timeout)))
            if output.json { return try Output.json(reply) }
            for line in reply.lines { print(line) }
            if reply.truncated {
                FileHandle.standardError.write(Data("(older lines left out: a reply carries at most \(ModuleLogReply.maximumBytes / 1024) KiB)\n".utf8))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a device; it is sent an empty desired state so it stops its modules.", discussion: "EXAMPLES:\n  fleethub device remove gw-001")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The device id.") var id: String

        func run() async throws {
            let opened = try workspace.open()
            let change = try DeviceRegistry(workspace: opened).remove(id: id)
            print("removed device \(id)")
            try await Publishing.publish(change, workspace: opened)
        }
    }
}

/// Where `device add` and `device config` write the device's config file, and the
/// settings of it that the hub does not keep.
struct DeviceConfigOptions: ParsableArguments {
    @Option(help: "Where to write the device's config file (0600); its certificate and key go next to it.") var out: String
    @Flag(help: "Replace --out if it exists.") var force = false
    @Option(help: "The device's data dir (state, bundles, modules, logs, telemetry buffer).") var dataDir: String?
    @Option(help: "Where the device's local inference API listens, HOST:PORT (default 127.0.0.1:8765).")
    var localAPI: String?
    @Option(help: "Where the device uploads telemetry: s3://BUCKET/PREFIX or file:///folder.") var storage: String?
    @Option(help: "The S3 endpoint, e.g. http://127.0.0.1:8333 (AWS when absent).") var storageEndpoint: String?
    @Option(help: "The S3 signing region (us-east-1 when absent).") var storageRegion: String?
    @Option(
        help: "An AWS shared-credentials file on the device holding the storage key pair (the secret never goes on a command line)."
    )
    var storageCredentials: String?

    func validate() throws {
        if storage == nil, storageEndpoint != nil || storageRegion != nil || storageCredentials != nil {
            throw ValidationError("--storage-endpoint, --storage-region and --storage-credentials need --storage")
        }
        if let storage, !storage.hasPrefix("s3://"), !storage.hasPrefix("file:///") {
            throw ValidationError("--storage must be s3://BUCKET/PREFIX or file:///absolute/folder, not '\(storage)'")
        }
    }

    /// Sets data dir, local API and storage in a config; the local API address is checked first.
    func customisation() throws -> (inout DeviceConfig) -> Void {
        let localAPI = try localAPI.map(LocalAPISettings.init(address:))
        let dataDir = dataDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let storage = storage.map {
            StorageSettings(
                url: $0, endpoint: storageEndpoint, region: storageRegion,
                credentialsFile: storageCredentials.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        }
        return { config in
            config.dataDir = dataDir
            config.localAPI = localAPI
            config.storage = storage
        }
    }
}
