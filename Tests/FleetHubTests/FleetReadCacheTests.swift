import FleetCore
@testable import FleetHub
import Foundation
import Testing

/// The dashboard's incremental reads (`FleetReadCache`): after every kind of change a
/// cached read shows exactly what a fresh read of the database shows.
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

    func expectSame(_ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (cachedOverview, cachedDevices) = try cached.fleet(now: now)
        let (freshOverview, freshDevices) = try fresh.fleet(now: now)
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
}
