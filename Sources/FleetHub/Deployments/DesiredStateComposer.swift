import FleetCore

/// What one device should run, before it gets a revision and a signature: the part
/// whose change makes the hub publish a new revision.
public struct DesiredContent: Codable, Equatable, Sendable {
    public var deployments: [DeploymentReference]
    public var modules: [ModuleSpec]

    public init(deployments: [DeploymentReference], modules: [ModuleSpec]) {
        self.deployments = deployments
        self.modules = modules
    }
}

/// Layers deployments onto one device, as IoT Hub layered deployments do: every
/// deployment whose target matches the device's tags contributes its modules, and per
/// module name the highest priority wins (on a tie, the deployment deployed later).
public enum DesiredStateComposer {
    public static func compose(
        tags: [String: String], deployments: [ResolvedDeployment], bundleURLs: (ContentDigest) -> [String]
    ) -> DesiredContent {
        let matching = deployments.filter { $0.targetExpression.matches(tags) }
        .sorted { ($0.priority, $0.sequence) > ($1.priority, $1.sequence) }
        var winners: [String: (deployment: ResolvedDeployment, module: ResolvedDeployment.Module)] = [:]
        for deployment in matching {
            for module in deployment.modules where winners[module.name] == nil {
                winners[module.name] = (deployment, module)
            }
        }
        let modules = winners.values.map { $0.module.spec(bundleURLs: bundleURLs) }
            .sorted { ($0.startupOrder, $0.name) < ($1.startupOrder, $1.name) }
        let contributors = Set(winners.values.map { DeploymentReference(name: $0.deployment.name, priority: $0.deployment.priority) })
            .sorted { ($0.priority, $1.name) > ($1.priority, $0.name) }
        return DesiredContent(deployments: contributors, modules: modules)
    }
}
