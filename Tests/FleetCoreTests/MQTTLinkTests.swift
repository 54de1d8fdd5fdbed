import FleetTesting
import Foundation
import Logging
import Testing

@testable import FleetCore

/// The client's own network loop against a real mosquitto: descriptors above 1023,
/// sessions that end in a protocol or TLS error, and reconnect times.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto")))
struct MQTTLinkTests {
    static func client(port: Int, id: String, tls: MQTTTLS? = nil) throws -> MQTTClient {
        var logger = Logger(label: "mqtt-link-test.\(id)")
        logger.logLevel = .critical
        return try MQTTClient(MQTTConfiguration(
            host: "127.0.0.1", port: port, clientId: id, tls: tls, keepAliveSeconds: 5,
            connectTimeout: .seconds(10), acknowledgementTimeout: .seconds(10), logger: logger))
    }

    @Test func aClientWhoseSocketIsAbove1023StillExchangesMessages() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let held = try OpenDescriptors(count: 1_100)
        defer { held.close() }

        let device = try Self.client(port: broker.port, id: "crowded")
        try await device.connect()
        defer { device.disconnect() }
        #expect(device.socketDescriptor >= 1024)
        let commands = try await device.messages("commands/#")

        let hub = try Self.client(port: broker.port, id: "hub")
        try await hub.connect()
        defer { hub.disconnect() }
        let reports = try await hub.messages("reports/#")
        try await device.publish("reports/crowded", text: "from a high descriptor")
        #expect(try #require(await first(of: reports)).text == "from a high descriptor")
        try await hub.publish("commands/ping", text: "ping")
        #expect(try #require(await first(of: commands)).text == "ping")
    }

    @Test func aListenerThatAnswersGarbageIsReportedAndTheRealBrokerReconnected() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try Self.client(port: broker.port, id: "device")
        try await device.connect()
        defer { device.disconnect() }
        let events = device.connectionEvents()

        broker.stop()
        let garbage = try NotMQTTListener(port: broker.port)
        let reason = await firstDisconnect(in: events) { $0.lowercased().contains("protocol") }
        #expect(reason != nil, "no disconnect naming the protocol error")
        garbage.stop()

        try await broker.restart()
        #expect(await connected(in: events, within: .seconds(5)))
        #expect(device.isConnected)
    }

    @Test func aFailedTLSHandshakeIsReportedAndTheRealBrokerReconnected() async throws {
        let broker = try await TLSTestBroker.start()
        defer { broker.stop() }
        let device = try Self.client(port: broker.port, id: "tls-device", tls: MQTTTLS(caFile: broker.caFile))
        try await device.connect()
        defer { device.disconnect() }
        let events = device.connectionEvents()

        broker.stop()
        let garbage = try NotMQTTListener(port: broker.port)
        let reason = await firstDisconnect(in: events) { $0.contains("TLS") }
        #expect(reason != nil, "no disconnect naming the TLS error")
        garbage.stop()

        try await broker.restart()
        #expect(await connected(in: events, within: .seconds(5)))
        let messages = try await device.messages("after/tls")
        try await device.publish("after/tls", text: "back")
        #expect(try #require(await first(of: messages)).text == "back")
    }

    @Test func aRefusedTLSConnectFailsAtOnceSayingRefused() async throws {
        let broker = try await TLSTestBroker.start()
        broker.stop()
        let device = try Self.client(port: broker.port, id: "refused", tls: MQTTTLS(caFile: broker.caFile))
        let started = ContinuousClock.now
        do {
            try await device.connect()
            Issue.record("connected to a stopped broker")
        } catch MQTTError.unreachable(_, let reason) {
            #expect(reason.lowercased().contains("refused"), "\(reason)")
        }
        // Not the connect timeout (10 s here): libmosquitto's TLS handshake would wait it out.
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func reconnectsWithinFiveSecondsOfTheBrokersReturn() async throws {
        let broker = try await MosquittoBroker.start()
        defer { broker.stop() }
        let device = try Self.client(port: broker.port, id: "device")
        try await device.connect()
        defer { device.disconnect() }
        let events = device.connectionEvents()

        // Down long enough for the back-off to reach its cap.
        broker.stop()
        try await Task.sleep(for: .seconds(8))
        try await broker.restart()
        let returned = ContinuousClock.now
        #expect(await connected(in: events, within: .seconds(5)))
        #expect(ContinuousClock.now - returned < .seconds(5))
    }

    /// The reason of the first disconnect event that `matches`, within 20 s.
    func firstDisconnect(
        in events: AsyncStream<MQTTConnectionEvent>, matching matches: @escaping @Sendable (String) -> Bool
    ) async -> String? {
        await first(of: AsyncStream { continuation in
            let task = Task {
                for await event in events {
                    if case .disconnected(let reason) = event, matches(reason) {
                        continuation.yield(reason)
                        break
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }, within: 20)
    }

    func connected(in events: AsyncStream<MQTTConnectionEvent>, within timeout: Duration) async -> Bool {
        let seconds = Double(timeout.components.seconds)
        return await first(of: AsyncStream { continuation in
            let task = Task {
                for await event in events where event == .connected {
                    continuation.yield(true)
                    break
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }, within: seconds) ?? false
    }
}

/// At least `count` descriptors on /dev/null held open, so that whatever opens next
/// gets a number above `count`; raises the soft descriptor limit for the test if it must.
final class OpenDescriptors: Sendable {
    let descriptors: [Int32]
    private let savedLimit: rlimit?

    init(count: Int) throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let needed = rlim_t(count + 256)
        if limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = min(needed, limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
            savedLimit = limit
        } else {
            savedLimit = nil
        }
        // `open` returns the lowest free number: once it returns `count`, every lower
        // one is taken, also those other tests of this process freed meanwhile.
        var opened: [Int32] = []
        while opened.count < count || (opened.last ?? 0) < Int32(count) {
            let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                let reason = String(cString: strerror(errno))
                for descriptor in opened { Glibc.close(descriptor) }
                throw FixtureError.didNotStart("\(count) descriptors", log: reason)
            }
            opened.append(descriptor)
        }
        descriptors = opened
    }

    func close() {
        for descriptor in descriptors { Glibc.close(descriptor) }
        if var savedLimit { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &savedLimit) }
    }
}

/// A TCP listener on 127.0.0.1:`port` that answers every connection with bytes that
/// are not MQTT (nor TLS), then closes it.
final class NotMQTTListener: @unchecked Sendable {
    private let socket: Int32
    private let thread: Thread

    init(port: Int) throws {
        let listener = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            Glibc.close(listener)
            throw FixtureError.didNotStart("a listener on port \(port)", log: String(cString: strerror(errno)))
        }
        socket = listener
        thread = Thread {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                let bytes: [UInt8] = [0, 0] + Array("not MQTT\r\n".utf8)
                _ = write(connection, bytes, bytes.count)
                usleep(100_000)
                Glibc.close(connection)
            }
        }
        thread.start()
    }

    /// Stops listening; the accept loop ends.
    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        Glibc.close(socket)
    }
}

/// A mosquitto with a TLS listener and a certificate made for the test by `openssl`.
final class TLSTestBroker: Sendable {
    let broker: TLSBroker
    let directory: TemporaryDirectory
    var caFile: String { directory.file("ca.crt") }
    var port: Int { broker.port }

    private init(broker: TLSBroker, directory: TemporaryDirectory) {
        self.broker = broker
        self.directory = directory
    }

    static func start() async throws -> TLSTestBroker {
        guard let openssl = Fixtures.which("openssl") else {
            throw FixtureError.missingProgram("openssl", install: "scripts/setup")
        }
        let directory = try TemporaryDirectory(prefix: "tls-broker")
        let file = directory.file
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Fixtures.run(openssl, ["req", "-x509"] + key + ["-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "1", "-subj", "/CN=test-ca"])
        try Fixtures.run(openssl, ["req"] + key + ["-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: file("san.ext"), atomically: true, encoding: .utf8)
        try Fixtures.run(openssl, [
            "x509", "-req", "-in", file("server.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial",
            "-out", file("server.crt"), "-days", "1", "-extfile", file("san.ext"),
        ])
        let port = try Fixtures.freePort()
        try """
            listener \(port) 127.0.0.1
            cafile \(file("ca.crt"))
            certfile \(file("server.crt"))
            keyfile \(file("server.key"))
            allow_anonymous true
            persistence false
            user \(NSUserName())

            """.write(toFile: file("mosquitto.conf"), atomically: true, encoding: .utf8)
        let broker = try await TLSBroker.start(configFile: file("mosquitto.conf"), port: port)
        return TLSTestBroker(broker: broker, directory: directory)
    }

    func stop() { broker.stop() }
    func restart() async throws { try await broker.restart() }
}
