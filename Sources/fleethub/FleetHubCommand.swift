import ArgumentParser
import FleetHub

/// `fleethub`: the hub's command line. Each subcommand parses its arguments and calls
/// the FleetHub library; no logic lives here.
@main
struct FleetHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleethub",
        abstract: "Model registry, module bundles and deployments for a fleet of edge devices.", discussion: "EXAMPLES:\n  fleethub init --broker mqtts://broker.example:8883 --public-url http://hub.example:8080\n  fleethub model register --name iris --path model/iris.onnx\n  fleethub deploy manifests/iris-prod.yaml\n  fleethub devices",
        version: fleetHubVersion,
        subcommands: [
            InitCommand.self, ConfigCommand.self, MigrateCommand.self, ModelCommand.self, ModuleCommand.self, DeviceCommand.self,
            DeployCommand.self, DeploymentCommand.self, RolloutCommand.self, PublishCommand.self, ServeCommand.self, BrokerCommand.self,
            DevicesCommand.self, AlertsCommand.self,
            CACommand.self, BrokerConfigCommand.self, AccessCommand.self,
        ])
}
