import FleetCore
@testable import FleetHub
import FleetTesting
import Foundation
import Testing

/// Desired states reach a real mosquitto: retained, signed with the workspace key,
/// with revisions that only grow.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct PublishingTests {
    func subscriber(_ broker: MosquittoBroker) async throws -> MQTTClient {
        let client = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: broker.port, clientId: "device-\(UUID().uuidString.prefix(6))",
            connectTimeout: .seconds(5), acknowledgementTimeout: .seconds(5)))
        try await client.connect()
        return client
    }

    /// The next `count` desired states received for `deviceId`, opened with `key`.
    func receive(_ count: Int, from messages: AsyncStream<MQTTMessage>, deviceId: String, key: HubPublicKey) async throws -> [DesiredState] {
        try await withThrowingTaskGroup(of: [DesiredState].self) { group in
            group.addTask {
                var states: [DesiredState] = []
                for await message in messages {
                    states.append(try key.open(message.payload, for: deviceId))
                    if states.count == count { break }
                }
                return states
            }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                throw CancellationError()
            }
            let states = try #require(try await group.next())
            group.cancelAll()
            return states
        }
    }

    @Test func retainedSignedStateReachesALateSubscriberAndRevisionsGrow() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        let publisher = DesiredStatePublisher(workspace: hub.workspace)
        try hub.packagedScorer()
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        try hub.deploy("name: prod\npriority: 1\ntarget: site=plant-1\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        #expect(try await publisher.publishPending() == ["gw-1"])
        #expect(try publisher.pending().isEmpty)

        // A device that connects only now still gets the latest state: it is retained.
        let device = try await subscriber(broker)
        defer { device.disconnect() }
        let messages = try await device.messages(Topics.desired("gw-1"))
        let key = try HubPublicKey(base64: hub.devices.deviceConfig(for: "gw-1").hub.publicKey)
        let first = try #require(try await receive(1, from: messages, deviceId: "gw-1", key: key).first)
        #expect(first.revision == 2)
        #expect(first.modules.map(\.name) == ["iris"])

        _ = try hub.devices.tag(id: "gw-1", set: ["site": "plant-2"])
        _ = try hub.devices.tag(id: "gw-1", set: ["site": "plant-1"])
        #expect(try await publisher.publishPending() == ["gw-1"])
        _ = try hub.deployments.delete(name: "prod")
        #expect(try await publisher.publishPending() == ["gw-1"])
        let later = try await receive(2, from: messages, deviceId: "gw-1", key: key)
        #expect(later.map(\.revision) == [4, 5])
        #expect(later.last?.modules == [])
    }

    /// Twenty operators deploy at once, each with their own `fleethub deploy` process:
    /// every deploy succeeds, each device receives only growing revisions, never one
    /// twice, and ends on the deployment's latest version.
    @Test func concurrentDeploysNeverDeliverAnOlderRevisionAfterANewerOne() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        try hub.packagedScorer()
        let devices = (1...200).map { "gw-\($0)" }
        for id in devices { _ = try hub.devices.add(id: id, tags: ["site": "plant-1"]) }
        let recorder = try await DesiredStateRecorder(brokerPort: broker.port, hubKey: hub.workspace.signingKey.publicKey)
        defer { recorder.stop() }

        // On PostgreSQL, half the deploys run from a second instance of the hub: a copy of
        // the workspace folder (keys, CA, config) on the same database.
        var workspaces = [hub.workspace.root.path]
        if HubTestDatabase.isPostgres {
            let second = hub.directory.file("second-instance")
            try FileManager.default.copyItem(atPath: hub.workspace.root.path, toPath: second)
            workspaces.append(second)
        }
        let deploys = try (1...20).map { run in
            let manifest = try hub.write(
                "prod-\(run).yaml",
                "name: prod\npriority: 1\ntarget: site=plant-1\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n    env: {RUN: \"\(run)\"}\n")
            return try ChildProcess(
                CommandLineTests.executable, ["deploy", manifest, "--workspace", workspaces[run % workspaces.count]],
                outputPath: hub.directory.file("deploy-\(run).log"))
        }
        for (index, deploy) in deploys.enumerated() {
            let status = try await deploy.waitForExit(timeout: .seconds(120))
            let log = (try? String(contentsOfFile: hub.directory.file("deploy-\(index + 1).log"), encoding: .utf8)) ?? ""
            #expect(status == 0, "deploy \(index + 1) failed: \(log)")
        }

        let latest = try #require(try hub.deployments.history(name: "prod").max { $0.version < $1.version })
        let run = try #require(latest.manifest.firstMatch(of: /RUN: "(\d+)"/)?.1)
        #expect(try DesiredStatePublisher(workspace: hub.workspace).pending().isEmpty)
        let delivered = await eventually {
            devices.allSatisfy { recorder.states(of: $0).last?.modules.first?.env["RUN"] == String(run) }
        }
        #expect(delivered, "not every device ended on version \(latest.version) (RUN \(run))")
        for id in devices {
            let revisions = recorder.states(of: id).map(\.revision)
            #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count, "\(id) received \(revisions)")
        }
        // What the broker keeps for a device that connects only now is each device's highest revision.
        let late = try await DesiredStateRecorder(brokerPort: broker.port, hubKey: hub.workspace.signingKey.publicKey)
        defer { late.stop() }
        #expect(await eventually { devices.allSatisfy { !late.states(of: $0).isEmpty } }, "a late subscriber did not get every retained state")
        for id in devices {
            let retained = late.states(of: id).last?.revision
            let staged = try hub.devices.show(id: id).revision
            #expect(retained == staged, "\(id): the broker retains revision \(retained ?? 0), the hub staged \(staged ?? 0)")
        }
    }

    /// Publishers take turns: one that read revision 5 cannot deliver it after another
    /// delivered 6, because the second does not even read until the first is done.
    @Test func aPublisherWaitsForTheOneBeforeIt() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        try hub.packagedScorer()
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        try hub.deploy("name: prod\npriority: 1\ntarget: site=plant-1\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        let publisher = DesiredStatePublisher(workspace: hub.workspace)

        let turn = try await PublishingTurn.take(in: hub.workspace)
        let publishing = Task { try await publisher.publishPending() }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try publisher.pending() == ["gw-1"], "a publisher published while another held the turn")
        turn.end()
        #expect(try await publishing.value == ["gw-1"])
        #expect(try publisher.pending().isEmpty)
    }

    @Test func onlyChangedDevicesArePublished() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        let publisher = DesiredStatePublisher(workspace: hub.workspace)
        try hub.packagedScorer()
        _ = try hub.devices.add(id: "gw-1", tags: ["site": "plant-1"])
        _ = try hub.devices.add(id: "gw-2", tags: ["site": "plant-2"])
        #expect(try await publisher.publishPending() == ["gw-1", "gw-2"])
        try hub.deploy("name: prod\npriority: 1\ntarget: site=plant-2\nmodules:\n  - name: iris\n    bundle: iris-scorer:1\n")
        #expect(try await publisher.publishPending() == ["gw-2"])
        _ = try hub.devices.add(id: "gw-3", tags: ["site": "plant-2"])
        #expect(try await publisher.publishPending() == ["gw-3"])
    }

    @Test func aStoppedBrokerLeavesStatesPendingUntilTheNextPublish() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let hub = try HubFixture(broker: broker.url)
        let publisher = DesiredStatePublisher(workspace: hub.workspace)
        broker.stop()
        _ = try hub.devices.add(id: "gw-1", tags: [:])
        await #expect(throws: PublishError.self) { try await publisher.publishPending() }
        #expect(try publisher.pending() == ["gw-1"])
        try await broker.restart()
        #expect(try await publisher.publishPending() == ["gw-1"])
        #expect(try hub.devices.show(id: "gw-1").publishedRevision == 1)
    }
}
