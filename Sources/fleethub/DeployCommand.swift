import ArgumentParser
import FleetCore
import FleetHub
import Foundation

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Validate a deployment manifest, store it, and publish the desired state of every device it changes.", discussion: "EXAMPLES:\n  fleethub deploy manifests/iris-prod.yaml\n  fleethub deploy manifests/iris-staged.yaml --workspace /srv/fleethub")

    @OptionGroup var workspace: WorkspaceOptions
    @Argument(help: "The manifest YAML file.") var file: String

    func run() async throws {
        let opened = try workspace.open()
        let change = try DeploymentStore(workspace: opened).deploy(fileAt: file)
        print("deployed \(file) as version \(change.version ?? 0); \(change.changedDevices.count) device(s) changed")
        RolloutOutput.started(change.rollout)
        try await Publishing.publish(change, workspace: opened)
    }
}

struct DeploymentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployment", abstract: "The active deployments.", discussion: "EXAMPLES:\n  fleethub deployment list\n  fleethub deployment status iris-prod\n  fleethub deployment rollback iris-prod", subcommands: [List.self, Show.self, Status.self, History.self, Rollback.self, Delete.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deployments.", discussion: "EXAMPLES:\n  fleethub deployment list\n  fleethub deployment list --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let deployments = try DeploymentStore(workspace: workspace.open()).list()
            if output.json { return try Output.json(deployments) }
            Output.table(
                ["DEPLOYMENT", "PRIORITY", "MODULES", "TARGET"],
                deployments.map { [$0.name, "\($0.priority)", $0.modules.map(\.bundle).joined(separator: ","), $0.target] })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a deployment and the devices it targets.", discussion: "EXAMPLES:\n  fleethub deployment show iris-prod\n  fleethub deployment show iris-prod --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The deployment name.") var name: String

        func run() throws {
            let store = try DeploymentStore(workspace: workspace.open())
            let deployment = try store.show(name: name)
            let detail = DeploymentDetail(deployment: deployment, devices: try store.targetedDevices(of: deployment))
            if output.json { return try Output.json(detail) }
            print("deployment: \(deployment.name)")
            print("priority: \(deployment.priority)")
            print("target: \(deployment.target)")
            print("devices: \(detail.devices.joined(separator: ", "))")
            print("version: \(deployment.version)")
            for module in deployment.modules {
                let shadow = module.shadow.map { "  shadow \($0.label) at \($0.sampleRate)" } ?? ""
                print("module: \(module.name)  \(module.label)  \(module.desiredStatus.rawValue)  \(module.digest)\(shadow)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a deployment and republish the devices whose desired state changes.", discussion: "EXAMPLES:\n  fleethub deployment delete iris-canary")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The deployment name.") var name: String

        func run() async throws {
            let opened = try workspace.open()
            let change = try DeploymentStore(workspace: opened).delete(name: name)
            print("deleted deployment \(name)")
            try await Publishing.publish(change, workspace: opened)
        }
    }
}

extension DeploymentCommand {
    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every version of a deployment: when it was made, what it resolved to, and its manifest (with --json).", discussion: "EXAMPLES:\n  fleethub deployment history iris-prod\n  fleethub deployment history iris-prod --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The deployment name.") var name: String

        func run() throws {
            let versions = try DeploymentStore(workspace: workspace.open()).history(name: name)
            if output.json { return try Output.json(versions) }
            Output.table(
                ["VERSION", "CREATED", "ORIGIN", "MODULES"],
                versions.map { ["\($0.version)", Output.date($0.createdAt), $0.origin, $0.modules.joined(separator: ", ")] })
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deploy an earlier version's content again as a new version: to every targeted device at once, or with --staged through its waves.",
            discussion: "The way out of a halted rollout. Without --to, the version before the latest.\n\nEXAMPLES:\n  fleethub deployment rollback iris-prod\n  fleethub deployment rollback iris-prod --to 3 --staged")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The deployment name.") var name: String
        @Option(help: "The version whose content to deploy again (default: the one before the latest).") var to: Int?
        @Flag(help: "Roll out through that version's waves instead of to every device at once.") var staged = false

        func run() async throws {
            let opened = try workspace.open()
            let change = try DeploymentStore(workspace: opened).rollback(name: name, to: to, staged: staged)
            print("rolled \(name) back: version \(change.version ?? 0) has the content of version \(to.map(String.init) ?? "before"); \(change.changedDevices.count) device(s) changed")
            RolloutOutput.started(change.rollout)
            try await Publishing.publish(change, workspace: opened)
        }
    }
}

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish", abstract: "Publish desired states the broker has not acknowledged yet.", discussion: "EXAMPLES:\n  fleethub publish")
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try await Publishing.publish(RolloutChange(changedDevices: [], warnings: []), workspace: workspace.open())
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve bundles (to devices with their token), the JSON API and the health dashboard (to viewers) over HTTPS (HTTP with insecure-http); ingest device health from the broker; advance staged rollouts.", discussion: "EXAMPLES:\n  fleethub serve --http 0.0.0.0:8080\n  fleethub serve --http 127.0.0.1:0 --workspace ./hub")
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "HOST:PORT to listen on (port 0–65535; 0 picks a free one).") var http = "127.0.0.1:8080"

    func run() async throws {
        guard let address = ListenAddress(http) else {
            throw ValidationError("--http '\(http)' is not HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:8080")
        }
        let opened = try workspace.open()
        let ingestion = HealthIngestion(workspace: opened)
        let rollouts = RolloutController(workspace: opened)
        let server = HubServer(
            workspace: opened, host: address.host.isEmpty ? "0.0.0.0" : address.host, port: address.port, ingestion: ingestion)
        // Refused (an http:// public URL without insecure-http) before anything starts.
        let scheme = try opened.https() == nil ? "http" : "https"
        if let bucket = try opened.blobs.bucket() {
            do {
                try await bucket.store.checkAccess()
                print("blobs: \(bucket.location)")
            } catch {
                Output.warn("bundles cannot be served until the blob bucket can be read: \(error)")
            }
        }
        // Each task says whether it was the HTTP server that returned.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    try await ingestion.run()
                } catch is CancellationError {
                } catch {
                    // Bundles and the API are still served; only health is missing.
                    Output.warn("device health is not ingested: \(error)")
                }
                return false
            }
            group.addTask {
                do {
                    try await rollouts.run()
                } catch is CancellationError {
                } catch {
                    Output.warn("staged rollouts do not advance: \(error)")
                }
                return false
            }
            group.addTask {
                do {
                    try await RevocationListRenewal(workspace: opened).run()
                } catch is CancellationError {}
                return false
            }
            group.addTask {
                try await server.run(handleSignals: true) { port in
                    print("serving on \(scheme)://\(server.host):\(port); API tokens: `fleethub access show`")
                }
                return true
            }
            // The HTTP server returns on SIGINT/SIGTERM; then ingestion writes what it holds and stops.
            while let serverReturned = try await group.next(), !serverReturned {}
            group.cancelAll()
        }
    }
}
