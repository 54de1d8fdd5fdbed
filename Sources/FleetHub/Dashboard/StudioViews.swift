import FleetCore
import Foundation

/// The dashboard's pages of the workspace's artifacts, as Azure ML's studio shows them:
/// models (versions, tags, flavour, where each version runs now), modules (bundle digest,
/// size, requirements, which deployments use it) and the list of deployments, each
/// linked to the others and to the devices.
struct StudioViews {
    let health: FleetHealth

    struct Link { var text: String, href: String }

    /// Devices shown by name on a version's row; the rest are counted.
    static let devicesShown = 20

    struct Running {
        var count: Int
        var devices: [Link]
        var more: Int?

        init(_ ids: [String]) {
            count = ids.count
            devices = ids.sorted().prefix(StudioViews.devicesShown).map { Link(text: $0, href: "/devices/\($0)") }
            more = ids.count > StudioViews.devicesShown ? ids.count - StudioViews.devicesShown : nil
        }
    }

    struct NameRow { var name: String, versions: Int, latest: Int, created: String, detail: String }

    struct ListPage { var rows: [NameRow] }

    func models() throws -> ListPage {
        let versions = try ModelRegistry(workspace: health.workspace).list()
        return ListPage(rows: Dictionary(grouping: versions, by: \.name).sorted { $0.key < $1.key }.map { name, versions in
            let latest = versions.max { $0.version < $1.version }!
            return NameRow(
                name: name, versions: versions.count, latest: latest.version, created: DashboardViews.clock(latest.createdAt, now: .distantFuture),
                detail: latest.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        })
    }

    struct ModelVersionRow {
        var version: Int, reference: String, created: String, description: String, flavour: String
        var tags: [String]
        var files: [String]
        var modules: [Link]
        var running: Running
    }

    struct ModelPage { var name: String, versions: [ModelVersionRow] }

    /// The flavour a model version records: its `flavor` or `flavour` tag, or the kind of
    /// its main file (`onnx`, `pickle`, an MLflow `MLmodel`).
    static func flavour(of model: ModelVersion) -> String {
        if let tag = model.tags["flavor"] ?? model.tags["flavour"] { return tag }
        if model.files.contains(where: { ($0.path as NSString).lastPathComponent == "MLmodel" }) { return "mlflow" }
        let kinds = Set(model.files.map { ($0.path as NSString).pathExtension.lowercased() }).subtracting([""])
        return kinds.isEmpty ? "not recorded" : kinds.sorted().joined(separator: ", ")
    }

    func model(name: String) throws -> ModelPage {
        let versions = try ModelRegistry(workspace: health.workspace).list(name: name)
        guard !versions.isEmpty else { throw RegistryError.unknownModel(name) }
        let modules = try ModuleRegistry(workspace: health.workspace).list()
        let running = try health.devicesRunning()
        return ModelPage(name: name, versions: versions.reversed().map { model in
            let packaging = modules.filter { $0.models.contains(model.reference) }
            let devices = Set(packaging.flatMap { running[$0.digest] ?? [] })
            return ModelVersionRow(
                version: model.version, reference: model.reference, created: DashboardViews.clock(model.createdAt, now: .distantFuture),
                description: model.description ?? "", flavour: Self.flavour(of: model),
                tags: model.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
                files: model.files.map { "\($0.path) (\(Self.size($0.size)))" },
                modules: packaging.map { Link(text: $0.reference, href: "/modules/\($0.name)#v\($0.version)") },
                running: Running(Array(devices)))
        })
    }

    func modules() throws -> ListPage {
        let versions = try ModuleRegistry(workspace: health.workspace).list()
        return ListPage(rows: Dictionary(grouping: versions, by: \.name).sorted { $0.key < $1.key }.map { name, versions in
            let latest = versions.max { $0.version < $1.version }!
            return NameRow(
                name: name, versions: versions.count, latest: latest.version, created: DashboardViews.clock(latest.createdAt, now: .distantFuture),
                detail: "\(latest.kind.rawValue), \(Self.size(latest.size))")
        })
    }

    struct ModuleVersionRow {
        var version: Int, reference: String, created: String, kind: String, digest: String, size: String, entry: String
        var models: [Link]
        var requirements: [String]
        var deployments: [Link]
        var running: Running
    }

    struct ModulePage { var name: String, versions: [ModuleVersionRow] }

    func module(name: String) throws -> ModulePage {
        let versions = try ModuleRegistry(workspace: health.workspace).list(name: name)
        guard !versions.isEmpty else { throw RegistryError.unknownModule(name) }
        let deployments = try DeploymentStore(workspace: health.workspace).list()
        let running = try health.devicesRunning()
        return ModulePage(name: name, versions: versions.reversed().map { module in
            ModuleVersionRow(
                version: module.version, reference: module.reference, created: DashboardViews.clock(module.createdAt, now: .distantFuture),
                kind: module.kind.rawValue, digest: module.digest.description, size: Self.size(module.size),
                entry: module.manifest.entry ?? module.manifest.command?.joined(separator: " ") ?? "",
                models: module.models.map { reference in
                    Link(text: reference, href: "/models/\(reference.split(separator: ":")[0])")
                },
                requirements: module.manifest.requirements,
                deployments: deployments.filter { deployment in
                    deployment.modules.contains { $0.digest == module.digest || $0.shadow?.digest == module.digest }
                }.map { Link(text: "\($0.name) (version \($0.version))", href: "/deployments/\($0.name)") },
                running: Running(running[module.digest] ?? []))
        })
    }

    struct DeploymentRow {
        var name: String, version: Int, target: String, priority: Int, targeted: Int, applied: Int, notApplied: Int
        var modules: [Link]
    }

    struct DeploymentsPage { var rows: [DeploymentRow] }

    func deployments() throws -> DeploymentsPage {
        let rollouts = Dictionary(uniqueKeysWithValues: try health.overview().rollouts.map { ($0.deployment, $0) })
        return DeploymentsPage(rows: try DeploymentStore(workspace: health.workspace).list().map { deployment in
            let rollout = rollouts[deployment.name]
            return DeploymentRow(
                name: deployment.name, version: deployment.version, target: deployment.target, priority: deployment.priority,
                targeted: rollout?.targeted ?? 0, applied: rollout?.count(.applied) ?? 0,
                notApplied: (rollout?.targeted ?? 0) - (rollout?.count(.applied) ?? 0),
                modules: deployment.modules.map { module in
                    Link(text: "\(module.name): \(module.label)", href: "/modules/\((try? VersionedName(parsing: module.bundle).name) ?? module.bundle)")
                })
        })
    }

    /// `12.3 MB`, `512 B`.
    static func size(_ bytes: Int) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(bytes), countStyle: .file)
    }
}
