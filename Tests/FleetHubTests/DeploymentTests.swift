import FleetCore
import FleetHub
import Foundation
import Testing

/// Deploying, layering and revisions on a real workspace database, without a broker:
/// these check what is staged; `PublishingTests` checks what reaches the broker.
struct DeploymentTests {
    let hub: HubFixture
    let manifest = """
        name: iris-prod
        priority: 10
        target: site=plant-1
        modules:
          - name: iris
            bundle: iris-scorer:1
            workers: 2
        """

    init() throws {
        hub = try HubFixture()
        try hub.packagedScorer()
    }

    func revision(_ id: String) throws -> Int? { try hub.devices.show(id: id).revision }

    @Test func deployStagesSignedStatesForTargetedDevicesOnly() throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "plant-2"])
        let change = try hub.deploy(manifest)
        #expect(change.changedDevices == ["gw-1"])
        #expect(change.warnings.isEmpty)
        let state = try #require(try hub.devices.desiredState(id: "gw-1"))
        #expect(state.revision == 2)
        #expect(state.deployments == [DeploymentReference(name: "iris-prod", priority: 10)])
        let module = try #require(state.modules.first)
        let packaged = try hub.modules.show(VersionedName(parsing: "iris-scorer:1"))
        #expect(module.bundle == BundleReference(digest: packaged.digest, size: packaged.size, url: "http://hub.test:8080/v1/bundles/\(packaged.digest)"))
        #expect(module.workers == 2)
        #expect(try hub.devices.desiredState(id: "gw-2")?.modules == [])
    }

    @Test func unchangedStateKeepsItsRevisionAndChangesOnlyGrow() throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        try hub.deploy(manifest)
        #expect(try hub.deploy(manifest).changedDevices.isEmpty)
        #expect(try revision("gw-1") == 2)
        #expect(try hub.devices.tag(id: "gw-1", set: ["site": "plant-1", "tier": "edge"]).changedDevices.isEmpty)
        #expect(try hub.devices.tag(id: "gw-1", set: ["site": "plant-2"]).changedDevices == ["gw-1"])
        #expect(try revision("gw-1") == 3)
        #expect(try hub.devices.tag(id: "gw-1", set: [:], remove: ["site"]).changedDevices.isEmpty)
        #expect(try hub.devices.tag(id: "gw-1", set: ["site": "plant-1"]).changedDevices == ["gw-1"])
        #expect(try revision("gw-1") == 4)
    }

    @Test func deletingADeploymentAndRemovingADeviceRestage() throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "plant-9"])
        try hub.deploy(manifest)
        #expect(try hub.deployments.delete(name: "iris-prod").changedDevices == ["gw-1"])
        #expect(try hub.devices.desiredState(id: "gw-1")?.modules == [])
        #expect(throws: DeploymentError.unknownDeployment("iris-prod")) { try hub.deployments.delete(name: "iris-prod") }

        try hub.deploy(manifest)
        #expect(try hub.devices.remove(id: "gw-1").changedDevices == ["gw-1"])
        // Added again, the device continues above every revision it has seen.
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        #expect(try revision("gw-1") == 6)
    }

    @Test func layeredDeploymentOverridesOneModuleByPriority() throws {
        let canary = try hub.packagedScorer(model: "iris", module: "iris-scorer", weights: "w2")
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1", "ring": "canary"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "plant-1"])
        try hub.deploy(manifest)
        let change = try hub.deploy("name: canary\npriority: 20\ntarget: ring=canary\nmodules:\n  - name: iris\n    bundle: iris-scorer:2\n")
        #expect(change.changedDevices == ["gw-1"])
        #expect(try hub.devices.desiredState(id: "gw-1")?.modules.map(\.bundle.digest) == [canary.digest])
        #expect(try hub.devices.desiredState(id: "gw-2")?.modules.map(\.bundle.digest) != [canary.digest])
    }

    @Test func aNewPublicURLRestagesEveryDeviceWithModules() throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "plant-2"])
        try hub.deploy(manifest)
        try hub.workspace.set("public-url", to: "https://hub.example")
        #expect(try hub.deployments.restage().changedDevices == ["gw-1"])
        #expect(try hub.devices.desiredState(id: "gw-1")?.modules.first?.bundle.url.hasPrefix("https://hub.example/v1/bundles/") == true)
    }

    @Test func badManifestsChangeNothing() throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        let unknownBundle = manifest.replacingOccurrences(of: "iris-scorer:1", with: "iris-scorer:9")
        #expect(throws: ManifestError.self) { try hub.deploy(unknownBundle) }
        do {
            try hub.deploy(unknownBundle, file: "iris.yaml")
        } catch {
            #expect("\(error)".hasPrefix("iris.yaml:6: field 'modules[0].bundle': no packaged module iris-scorer:9"))
        }
        #expect(try hub.deployments.list().isEmpty)
        #expect(try revision("gw-1") == 1)
    }

    @Test func aTargetMatchingNoDeviceIsAWarning() throws {
        let change = try hub.deploy(manifest)
        #expect(change.changedDevices.isEmpty)
        #expect(change.warnings == ["deployment 'iris-prod': target 'site=plant-1' matches no registered device"])
        #expect(try hub.deployments.list().map(\.name) == ["iris-prod"])
    }

    @Test func deviceConfigCarriesBrokerKeyAndBundleURL() throws {
        let (config, _) = try hub.devices.add(id: "gw-1", tags: [:])
        #expect(config.deviceId == "gw-1")
        #expect(config.broker.url == "mqtt://127.0.0.1:1")
        #expect(config.hub.bundleBaseURL == "http://hub.test:8080")
        #expect(try HubPublicKey(base64: config.hub.publicKey) == hub.workspace.signingKey.publicKey)
        #expect(throws: RegistryError.deviceExists("gw-1")) { try hub.devices.add(id: "gw-1", tags: [:]) }
        #expect(throws: FleetNameError.invalid("gw/1", kind: .deviceId)) { try hub.devices.add(id: "gw/1", tags: [:]) }
    }
}
