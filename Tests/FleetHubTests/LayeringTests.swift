import FleetCore
import FleetHub
import Foundation
import Testing

/// Layered deployments: per module name the highest priority wins.
struct LayeringTests {
    let digestA = ContentDigest(of: Data("a".utf8))
    let digestB = ContentDigest(of: Data("b".utf8))

    func module(_ name: String, digest: ContentDigest, order: Int = 0) -> ResolvedDeployment.Module {
        ResolvedDeployment.Module(
            name: name, bundle: "\(name)-bundle:1", kind: .pythonScoring, digest: digest, size: 10,
            desiredStatus: .running, restartPolicy: .always, startupOrder: order, workers: 1, env: [:],
            telemetry: TelemetrySettings())
    }

    func deployment(_ name: String, priority: Int, target: String, sequence: Int64, modules: [ResolvedDeployment.Module]) throws -> ResolvedDeployment {
        try ResolvedDeployment(
            name: name, priority: priority, target: target, modules: modules, sequence: sequence,
            createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0))
    }

    func compose(_ tags: [String: String], _ deployments: [ResolvedDeployment]) -> DesiredContent {
        DesiredStateComposer.compose(tags: tags, deployments: deployments) { ["http://hub/v1/bundles/\($0)"] }
    }

    /// The target is parsed when a deployment is made or read back: a stored target that
    /// does not parse is an error naming the deployment, never a deployment that quietly
    /// matches no device.
    @Test func aStoredTargetThatDoesNotParseIsAnErrorNamingTheDeployment() throws {
        let stored = try FleetJSON.encode(try deployment("base", priority: 1, target: "site=p1", sequence: 1, modules: []))
        let text = String(decoding: stored, as: UTF8.self)
        #expect(!text.contains("targetExpression"))
        #expect(try FleetJSON.decode(ResolvedDeployment.self, from: stored).targetExpression.matches(["site": "p1"]))
        let broken = Data(text.replacingOccurrences(of: "\"site=p1\"", with: "\"site=\"").utf8)
        #expect {
            try FleetJSON.decode(ResolvedDeployment.self, from: broken)
        } throws: { error in
            "\(error)".contains("deployment 'base': target 'site='")
        }
    }

    @Test func higherPriorityWinsPerModuleName() throws {
        let base = try deployment("base", priority: 10, target: "site=p1", sequence: 1,
                              modules: [module("iris", digest: digestA), module("agent", digest: digestA, order: -1)])
        let canary = try deployment("canary", priority: 20, target: "ring=canary", sequence: 2,
                                modules: [module("iris", digest: digestB)])
        let content = compose(["site": "p1", "ring": "canary"], [base, canary])
        #expect(content.modules.map(\.name) == ["agent", "iris"])
        #expect(content.modules.first { $0.name == "iris" }?.bundle.digest == digestB)
        #expect(content.modules.first { $0.name == "agent" }?.bundle.digest == digestA)
        #expect(content.deployments == [DeploymentReference(name: "canary", priority: 20), DeploymentReference(name: "base", priority: 10)])
        #expect(content.modules[0].bundle.url == "http://hub/v1/bundles/\(digestA)")
    }

    /// With several hub instances (`bundle-urls`), each bundle names all their URLs in
    /// order and the first as `url`; with one, the state has no `urls` (its bytes as before).
    @Test func everyBundleURLGoesIntoTheStateInOrderTheFirstAlsoAsURL() throws {
        let base = try deployment("base", priority: 10, target: "*", sequence: 1, modules: [module("iris", digest: digestA)])
        var config = HubConfig(broker: "mqtt://127.0.0.1:1", publicURL: "http://hub-a:8080", insecureHTTP: true)
        let single = DesiredStateComposer.compose(tags: [:], deployments: [base], bundleURLs: config.downloadURLs(for:))
        #expect(single.modules[0].bundle.urls == nil)
        #expect(!String(decoding: try FleetJSON.encode(single), as: UTF8.self).contains("urls"))

        try config.set(.bundleURLs, to: "http://hub-a:8080, http://hub-b:8080/")
        let bundle = DesiredStateComposer.compose(tags: [:], deployments: [base], bundleURLs: config.downloadURLs(for:)).modules[0].bundle
        #expect(bundle.url == "http://hub-a:8080/v1/bundles/\(digestA)")
        #expect(bundle.downloadURLs == ["http://hub-a:8080/v1/bundles/\(digestA)", "http://hub-b:8080/v1/bundles/\(digestA)"])
        #expect(throws: WorkspaceError.self) { try config.set(.bundleURLs, to: "http://hub-a:8080,ftp://hub-b") }
    }

    @Test func onlyMatchingDeploymentsContribute() throws {
        let base = try deployment("base", priority: 10, target: "site=p1", sequence: 1, modules: [module("iris", digest: digestA)])
        let canary = try deployment("canary", priority: 20, target: "ring=canary", sequence: 2, modules: [module("iris", digest: digestB)])
        #expect(compose(["site": "p1"], [base, canary]).modules.map(\.bundle.digest) == [digestA])
        #expect(compose(["site": "p2"], [base, canary]) == DesiredContent(deployments: [], modules: []))
    }

    @Test func onEqualPriorityTheLaterDeploymentWins() throws {
        let first = try deployment("first", priority: 5, target: "*", sequence: 1, modules: [module("iris", digest: digestA)])
        let later = try deployment("later", priority: 5, target: "*", sequence: 2, modules: [module("iris", digest: digestB)])
        #expect(compose([:], [first, later]).modules.map(\.bundle.digest) == [digestB])
        #expect(compose([:], [later, first]).modules.map(\.bundle.digest) == [digestB])
    }

    @Test func aDeploymentWhoseModulesAllLostIsNotListed() throws {
        let low = try deployment("low", priority: 1, target: "*", sequence: 1, modules: [module("iris", digest: digestA)])
        let high = try deployment("high", priority: 9, target: "*", sequence: 2, modules: [module("iris", digest: digestB)])
        #expect(compose([:], [low, high]).deployments.map(\.name) == ["high"])
    }
}
