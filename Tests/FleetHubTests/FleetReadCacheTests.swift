import FleetCore
@testable import FleetHub
import Foundation
import Testing

/// The dashboard's incremental reads (`FleetReadCache`) and what it keeps derived of
/// them (`DerivedFleet`): after every kind of change, and as time passes, a cached read
/// shows exactly what a fresh read and derivation of the whole database shows.
struct FleetReadCacheTests {
    let hub: HubFixture
    let writer: HealthWriter
    let cached: FleetHealth
    let fresh: FleetHealth
    let now = Date()

    init() throws {
        hub = try HubFixture()
        writer = HealthWriter(database: hub.workspace.database)
        cached = FleetHealth(workspace: hub.workspace, cache: FleetReadCache())
        fresh = FleetHealth(workspace: hub.workspace)
    }

    func expectSame(_ comment: Comment, at time: Date? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (cachedOverview, cachedDevices) = try cached.fleet(now: time ?? now)
        let (freshOverview, freshDevices) = try fresh.fleet(now: time ?? now)
        #expect(cachedDevices == freshDevices, comment, sourceLocation: sourceLocation)
        #expect(cachedOverview == freshOverview, comment, sourceLocation: sourceLocation)
    }

    func report(_ report: HealthReport) async throws {
        writer.add(.report(report), payload: try FleetJSON.encode(report), receivedAt: now)
        try await writer.flush()
    }

    @Test func aCachedReadFollowsReportsConnectionsDevicesTagsAndModules() async throws {
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "a"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "b"])
        try expectSame("before any report")
        try await report(HealthFixture.report("gw-1"))
        try expectSame("after a first report")
        #expect(try cached.fleet(now: now).devices.first { $0.id == "gw-1" }?.modulesTotal == 1)

        try await report(HealthFixture.report("gw-1", status: .failed, error: "boom", modules: []))
        try await report(HealthFixture.report("gw-2", modules: [HealthFixture.module("a"), HealthFixture.module("b")]))
        try expectSame("after newer reports")
        #expect(try cached.fleet(now: now).devices.map(\.revisionStatus) == [.failed, .applied])

        writer.add(.connection(deviceId: "gw-2", ConnectionState(online: false, at: now)), payload: Data(), receivedAt: now)
        try await writer.flush()
        try expectSame("after a device went offline")
        #expect(try cached.fleet(now: now).overview.offline == 1)

        _ = try hub.devices.tag(id: "gw-2", set: ["site": "c"])
        _ = try hub.devices.add(id: "gw-3", tags: [:])
        try expectSame("after a tag change and a new device")
        #expect(try cached.fleet(now: now).devices.map(\.id) == ["gw-1", "gw-2", "gw-3"])

        let scorer = try hub.packagedScorer()
        try await report(HealthReport(
            deviceId: "gw-3", at: now, runtimeVersion: "0.1.0", uptimeSeconds: 1,
            desired: DesiredStateStatus(revision: 1, status: .applied),
            modules: [ModuleHealth(name: "iris", bundleDigest: scorer.digest, status: .running, restarts: 0)],
            system: HealthFixture.report("gw-3").system, telemetry: HealthFixture.report("gw-3").telemetry))
        try expectSame("after a module was packaged")
        #expect(try cached.fleet(now: now).devices.last?.running == ["iris: iris-scorer:1 (model iris:1)"])

        _ = try hub.devices.remove(id: "gw-1")
        try expectSame("after a device was removed")
        #expect(try cached.fleet(now: now).devices.map(\.id) == ["gw-2", "gw-3"])
    }

    @Test func aCachedReadFollowsTheHeartbeatRunningOutAsTimePasses() async throws {
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        _ = try hub.devices.add(id: "gw-2", tags: [:])
        var announced = HealthFixture.report("gw-2")
        announced.reportIntervalSeconds = 10
        try await report(HealthFixture.report("gw-1"))
        try await report(announced)
        try expectSame("both just reported")
        #expect(try cached.fleet(now: now).overview.online == 2)

        // gw-2 announced 10 s between reports: offline after 30 s; gw-1 after the policy's 90 s.
        try expectSame("gw-2's heartbeat ran out", at: now.addingTimeInterval(31))
        #expect(try cached.fleet(now: now.addingTimeInterval(31)).devices.map(\.connectivity) == [.online, .offline])
        try expectSame("both heartbeats ran out", at: now.addingTimeInterval(91))
        #expect(try cached.fleet(now: now.addingTimeInterval(91)).overview.offline == 2)
        try expectSame("offline long enough for alerts", at: now.addingTimeInterval(1000))
        #expect(try cached.fleet(now: now.addingTimeInterval(1000)).overview.alerts.map(\.kind) == [.deviceOffline, .deviceOffline])
        try expectSame("an earlier time again: both online", at: now)
        #expect(try cached.fleet(now: now).overview.online == 2)

        try await report(HealthFixture.report("gw-1", modules: [HealthFixture.module("iris", status: .backoff, restarts: 5)]))
        try expectSame("a restart loop, later", at: now.addingTimeInterval(1000))
        #expect(try cached.fleet(now: now.addingTimeInterval(1000)).overview.alerts.map(\.kind) == [.deviceOffline, .restartLoop, .deviceOffline])
    }

    @Test func aCachedReadFollowsDeploymentsAndTheReportsAboutThem() async throws {
        try hub.packagedScorer(module: "scorer")
        for id in ["gw-1", "gw-2", "gw-3"] { _ = try hub.devices.add(id: id, tags: ["site": id == "gw-3" ? "b" : "a"]) }
        try expectSame("no deployment")
        try hub.deploy("name: prod\npriority: 1\ntarget: site=a\nmodules:\n  - name: scorer\n    bundle: scorer:1\n")
        try expectSame("a new deployment")
        #expect(try cached.fleet(now: now).overview.rollouts.first?.count(.pending) == 2)

        let staged = try #require(try hub.devices.show(id: "gw-1").revision)
        try await report(HealthFixture.report("gw-1", revision: staged, modules: [HealthFixture.module("scorer")]))
        try await report(HealthFixture.report("gw-2", revision: staged, status: .failed, error: "no space", modules: []))
        try expectSame("one applied, one failed")
        let rollout = try #require(try cached.fleet(now: now).overview.rollouts.first)
        #expect(rollout.devices.map(\.state) == [.applied, .failed])
        #expect(try cached.fleet(now: now).overview.alerts.map(\.kind) == [.deploymentFailing])

        // Another deployment, to no device.
        try hub.deploy("name: lab\npriority: 2\ntarget: site=nowhere\nmodules:\n  - name: scorer\n    bundle: scorer:1\n", file: "lab.yaml")
        try expectSame("a deployment to no device")
        #expect(try cached.fleet(now: now).overview.rollouts.map(\.deployment).sorted() == ["lab", "prod"])

        // A read of the stored health by another path must not hide the change from the next derivation.
        try await report(HealthFixture.report("gw-2", revision: staged, modules: [HealthFixture.module("scorer")]))
        _ = try cached.devicesRunning()
        try expectSame("after another reader read the change")
        #expect(try cached.fleet(now: now).overview.rollouts.first { $0.deployment == "prod" }?.count(.applied) == 2)
    }
}
