import FleetCore
import FleetHub
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
