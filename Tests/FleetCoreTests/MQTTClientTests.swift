import FleetTesting
import Foundation
import Synchronization
import Testing

@testable import FleetCore

/// The MQTT client against a real mosquitto, one broker per test.
@Suite(.enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct MQTTClientTests {
    func client(_ broker: MosquittoBroker, id: String, user: String? = nil, password: String? = nil, will: LastWill? = nil)
        throws -> MQTTClient
    {
        try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: broker.port, clientId: id, username: user, password: password,
            keepAliveSeconds: 5, will: will, connectTimeout: .seconds(15), acknowledgementTimeout: .seconds(15)))
    }

    @Test func retainedMessageReachesALateSubscriber() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let publisher = try client(broker, id: "publisher")
        try await publisher.connect()
        try await publisher.publish("fleet/v1/devices/gw-1/desired", text: "state-7", qos: .atLeastOnce, retain: true)
        publisher.disconnect()

        let subscriber = try client(broker, id: "late")
        try await subscriber.connect()
        defer { subscriber.disconnect() }
        let messages = try await subscriber.messages("fleet/v1/devices/gw-1/desired")
        let message = try #require(await first(of: messages))
        #expect(message.text == "state-7")
        #expect(message.retained)
    }

    /// Past the broker's in-flight window (mosquitto's default: 20), the UNSUBACK
    /// overtakes the retained messages still queued; the end marker waits for them.
    @Test func retainedMessagesWithAnEndMarkerReadsMoreThanTheBrokersInFlightWindow() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try client(broker, id: "device")
        try await device.connect()
        defer { device.disconnect() }
        for index in 0..<500 {
            try await device.publish("fleet/v1/devices/gw-\(index)/reported", text: "report \(index)", retain: true)
        }

        let hub = try client(broker, id: "hub")
        try await hub.connect()
        defer { hub.disconnect() }
        let retained = try await hub.retainedMessages("fleet/v1/devices/+/reported", endMarker: Topics.retainedEndMarker("test"))
        let missing = Set((0..<500).map { "report \($0)" }).subtracting(retained.map(\.text))
        #expect(retained.count == 500 && missing.isEmpty, "\(retained.count) read, \(missing.count) missing")
    }

    @Test func retainedMessagesReadsWhatTheBrokerHoldsAndUnsubscribes() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try client(broker, id: "device")
        try await device.connect()
        defer { device.disconnect() }
        try await device.publish("fleet/v1/devices/gw-1/reported", text: "one", retain: true)
        try await device.publish("fleet/v1/devices/gw-2/reported", text: "two", retain: true)
        try await device.publish("fleet/v1/devices/gw-3/reported", text: "not retained")

        let hub = try client(broker, id: "hub")
        try await hub.connect()
        defer { hub.disconnect() }
        let live = Mutex<[String]>([])
        try await hub.subscribe("$share/hub/fleet/v1/devices/+/reported") { message in live.withLock { $0.append(message.text) } }
        let retained = try await hub.retainedMessages("fleet/v1/devices/+/reported")
        #expect(retained.map(\.topic) == ["fleet/v1/devices/gw-1/reported", "fleet/v1/devices/gw-2/reported"])
        #expect(retained.map(\.text) == ["one", "two"])

        // Unsubscribed: a new message arrives once, through the shared subscription only.
        try await device.publish("fleet/v1/devices/gw-1/reported", text: "live", retain: true)
        #expect(await eventually { live.withLock { $0.contains("live") } })
        try await Task.sleep(for: .milliseconds(200))
        #expect(live.withLock { $0.filter { $0 == "live" }.count } == 1)
    }

    @Test func qos1PublishIsAcknowledgedAndDelivered() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "sub")
        try await subscriber.connect()
        defer { subscriber.disconnect() }
        let messages = try await subscriber.messages("round/trip", qos: .atLeastOnce)

        let publisher = try client(broker, id: "pub")
        try await publisher.connect()
        defer { publisher.disconnect() }
        for index in 0..<20 {
            try await publisher.publish("round/trip", text: "m\(index)", qos: .atLeastOnce)
        }
        var received: [String] = []
        for await message in messages {
            #expect(message.qos == .atLeastOnce)
            #expect(!message.retained)
            received.append(message.text)
            if received.count == 20 { break }
        }
        #expect(received == (0..<20).map { "m\($0)" })
    }

    /// A fan-out's worth of QoS 1 publishes at once, a thousand on the wire before their
    /// PUBACKs: every one is acknowledged and delivered.
    @Test func aThousandPublishesInFlightAreAllAcknowledged() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "subscriber")
        try await subscriber.connect()
        defer { subscriber.disconnect() }
        let received = Mutex(Set<String>())
        try await subscriber.subscribe("fleet/v1/devices/+/desired") { message in
            _ = received.withLock { $0.insert(message.topic) }
        }
        let publisher = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: broker.port, clientId: "fan-out", acknowledgementTimeout: .seconds(30),
            publishesInFlight: 1000))
        try await publisher.connect()
        defer { publisher.disconnect() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for device in 0..<2000 {
                group.addTask {
                    try await publisher.publish("fleet/v1/devices/gw-\(device)/desired", text: "state", qos: .atLeastOnce, retain: true)
                }
            }
            try await group.waitForAll()
        }
        #expect(await eventually { received.withLock { $0.count } == 2000 })
    }

    @Test func publishesInFlightOutsideWhatMQTTAllowsIsRefused() {
        for count in [0, 65536] {
            #expect(throws: MQTTError.self) {
                try MQTTClient(MQTTConfiguration(host: "127.0.0.1", port: 1883, clientId: "c", publishesInFlight: count))
            }
        }
    }

    @Test func wildcardFiltersMatchOnlyTheirTopics() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "hub")
        try await subscriber.connect()
        defer { subscriber.disconnect() }
        let reports = try await subscriber.messages(Topics.allReported)
        let everything = try await subscriber.messages("site/#")

        let publisher = try client(broker, id: "dev")
        try await publisher.connect()
        defer { publisher.disconnect() }
        try await publisher.publish(Topics.connection("gw-1"), text: "not a report")
        try await publisher.publish(Topics.reported("gw-1"), text: "r1")
        try await publisher.publish("site/plant-1/line/3", text: "deep")
        try await publisher.publish(Topics.reported("gw-2"), text: "r2")

        var reportTexts: [String] = []
        for await message in reports {
            reportTexts.append("\(Topics.deviceId(inTopic: message.topic) ?? "?"):\(message.text)")
            if reportTexts.count == 2 { break }
        }
        #expect(reportTexts == ["gw-1:r1", "gw-2:r2"])
        let deep = try #require(await first(of: everything))
        #expect(deep.topic == "site/plant-1/line/3")
    }

    @Test func lastWillIsPublishedWhenTheConnectionDropsButNotOnCleanDisconnect() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let watcher = try client(broker, id: "watcher")
        try await watcher.connect()
        defer { watcher.disconnect() }
        let wills = try await watcher.messages("devices/+/connection")

        let will = { (id: String) in LastWill(topic: "devices/\(id)/connection", payload: Data(#"{"online":false}"#.utf8)) }
        let polite = try client(broker, id: "polite", will: will("polite"))
        try await polite.connect()
        polite.disconnect()

        let crashing = try client(broker, id: "crashing", will: will("crashing"))
        try await crashing.connect()
        crashing.dropConnectionWithoutDisconnect()

        let message = try #require(await first(of: wills))
        #expect(message.topic == "devices/crashing/connection")
        #expect(message.text == #"{"online":false}"#)
        #expect(message.retained == false)
        // The polite client disconnected before the crashing one connected, so its
        // will, had the broker sent it, would have arrived first.
    }

    @Test func reconnectsAndResubscribesAfterTheBrokerRestarts() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try client(broker, id: "device")
        try await device.connect()
        defer { device.disconnect() }
        let events = device.connectionEvents()
        let commands = try await device.messages("commands/#")

        try await broker.restart()
        var sawDisconnect = false
        for await event in events {
            if case .disconnected = event { sawDisconnect = true }
            if event == .connected { break }
        }
        #expect(sawDisconnect)
        #expect(device.isConnected)

        let hub = try client(broker, id: "hub")
        try await hub.connect()
        defer { hub.disconnect() }
        try await hub.publish("commands/reboot", text: "now")
        let message = try #require(await first(of: commands))
        #expect(message.text == "now")
    }

    @Test func qos1PublishWhileTheBrokerIsDownIsDeliveredAfterTheReconnect() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try client(broker, id: "device", user: nil)
        try await device.connect()
        defer { device.disconnect() }
        let events = device.connectionEvents()
        broker.stop()
        for await event in events {
            if case .disconnected = event { break }
        }
        async let published: Void = device.publish("reports/1", text: "queued", qos: .atLeastOnce, retain: true)
        try await Task.sleep(for: .milliseconds(200))
        try await broker.restart()
        try await published

        let reader = try client(broker, id: "reader")
        try await reader.connect()
        defer { reader.disconnect() }
        let message = try #require(await first(of: try await reader.messages("reports/1")))
        #expect(message.text == "queued")
    }

    @Test func wrongPasswordIsRefusedAsNotAuthorised() async throws {
        let broker = try await MosquittoBroker.start(users: ["gw-1": "right"])
        defer { broker.stop() }
        let intruder = try client(broker, id: "gw-1", user: "gw-1", password: "wrong")
        await #expect(throws: MQTTError.connectionRefused(.notAuthorised, broker: "127.0.0.1:\(broker.port)")) {
            try await intruder.connect()
        }
        #expect(!intruder.isConnected)
        let error = MQTTError.connectionRefused(.notAuthorised, broker: "127.0.0.1:\(broker.port)")
        #expect("\(error)".contains("not authorised"))

        let device = try client(broker, id: "gw-1", user: "gw-1", password: "right")
        try await device.connect()
        #expect(device.isConnected)
        device.disconnect()
    }

    @Test func unreachableBrokerIsATypedError() async throws {
        let port = try Fixtures.freePort()
        let lonely = try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: port, clientId: "lonely", connectTimeout: .seconds(3)))
        do {
            try await lonely.connect()
            Issue.record("connected to a port where nothing listens")
        } catch let error as MQTTError {
            guard case .unreachable(let broker, let reason) = error else {
                Issue.record("expected unreachable, got \(error)")
                return
            }
            #expect(broker == "127.0.0.1:\(port)")
            #expect(reason.lowercased().contains("refused"))
        }
    }

    @Test func publishingToAWildcardTopicIsRefusedBeforeTheNetwork() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let publisher = try client(broker, id: "pub")
        try await publisher.connect()
        defer { publisher.disconnect() }
        await #expect(throws: MQTTError.invalidTopic("fleet/+/x")) {
            try await publisher.publish("fleet/+/x", text: "no")
        }
        await #expect(throws: MQTTError.invalidFilter("a/#/b")) {
            try await publisher.subscribe("a/#/b") { _ in }
        }
    }
}

/// The first element of `stream`, or nil if none arrives within `seconds`.
func first<T: Sendable>(of stream: AsyncStream<T>, within seconds: Double = 15) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask {
            for await element in stream { return element }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let result = await group.next() ?? nil
        group.cancelAll()
        return result
    }
}
