import CMosquitto
import Foundation
import Logging
import Synchronization

private let libraryInitialised: Bool = {
    mosquitto_lib_init()
    return true
}()

/// An MQTT 3.1.1 session with one broker, over libmosquitto.
///
/// Once `connect()` succeeded the client stays connected on its own: a lost
/// connection is retried with `configuration.reconnectBackoff`, and every
/// subscription is sent again after each reconnect. A QoS 1 `publish` returns only
/// after the broker acknowledged it. Nothing of libmosquitto leaves this type.
///
/// The client drives libmosquitto from a thread of its own that `poll()`s the
/// socket, rather than `mosquitto_loop_start`'s thread: that one uses `select()`,
/// which fails for a descriptor above 1023, and it ends silently on a TLS or
/// protocol error, leaving the client dead. Here every error of the loop is logged,
/// reported on `connectionEvents()` with its reason, and followed by a reconnect.
public final class MQTTClient: Sendable {
    /// The configuration this client was made with.
    public let configuration: MQTTConfiguration
    private let loop: NetworkLoop
    private let state = Mutex(State())
    /// The latest error libmosquitto logged (e.g. a TLS verification failure). Kept
    /// apart from `state` because libmosquitto may log while `state` is locked.
    private let lastLibraryError = Mutex<String?>(nil)
    private var logger: Logger { configuration.logger }
    private var brokerName: String { "\(configuration.host):\(configuration.port)" }

    private struct Subscription {
        var qos: MQTTQoS
        var handler: @Sendable (MQTTMessage) -> Void
    }

    private enum Phase {
        case idle, connecting, connected, reconnecting, closed
    }

    /// An operation waiting for the broker: CONNACK, PUBACK or SUBACK.
    private enum PendingKey: Hashable {
        case connect
        case publish(Int32)
        case subscribe(Int32)
        case unsubscribe(Int32)
    }

    private struct State {
        var phase = Phase.idle
        /// `connect()` asked the network thread to open the connection.
        var connectRequested = false
        var loopStarted = false
        /// The reconnect attempt due at `nextReconnect` (1 for the first; 0 before any).
        var attempt = 0
        var nextReconnect = ContinuousClock.now
        /// When the current connection attempt began, to give up on one that hangs.
        var attemptStarted = ContinuousClock.now
        /// The current attempt ended in an error. libmosquitto may still hold its dead
        /// socket (a refused TLS connect leaves it open and reports success on every
        /// read), which is then not polled, or the thread would spin, until the next
        /// attempt replaces it.
        var attemptFailed = false
        /// The socket error the TLS handshake's first write met inside
        /// `mosquitto_connect_async` (a refused loopback connect fails at once), which
        /// libmosquitto swallows: the socket then reports no error any more.
        var connectErrno: Int32 = 0
        var connectedAt = ContinuousClock.now
        /// libmosquitto's disconnect callback ran during this turn of the network
        /// thread, which therefore reported the error already.
        var disconnectCallbackRan = false
        /// The reason last reported on `connectionEvents()`, so that a broker that stays
        /// away is reported once per distinct reason, not once per attempt.
        var reportedReason: String?
        var subscriptions: [String: Subscription] = [:]
        var waiters: [PendingKey: CheckedContinuation<[Int32], any Error>] = [:]
        var eventSinks: [UUID: AsyncStream<MQTTConnectionEvent>.Continuation] = [:]
        var messageSinks: [UUID: AsyncStream<MQTTMessage>.Continuation] = [:]
    }

    /// Prepares a client; nothing touches the network before `connect()`.
    public init(_ configuration: MQTTConfiguration) throws {
        _ = libraryInitialised
        self.configuration = configuration
        guard let pointer = mosquitto_new(configuration.clientId, configuration.cleanSession, nil) else {
            throw MQTTError.invalidConfiguration("cannot create a client with id '\(configuration.clientId)'")
        }
        loop = try NetworkLoop(pointer)
        // Publishing and subscribing happen on callers' threads while the network
        // thread reads and writes: libmosquitto then locks and queues instead of writing.
        mosquitto_threaded_set(pointer, true)
        mosquitto_user_data_set(pointer, Unmanaged.passUnretained(self).toOpaque())
        loop.client = self
        try apply(configuration)
        installCallbacks()
    }

    deinit {
        // The network thread may still flush a DISCONNECT; no callback may reach this
        // client any more.
        mosquitto_user_data_set(loop.pointer, nil)
        let phase = state.withLock { $0.phase }
        if phase != .idle && phase != .closed {
            mosquitto_disconnect(loop.pointer)
        }
        loop.clientReleased()
    }

    /// The descriptor of the broker connection, -1 without one; tests check that a
    /// descriptor above 1023 works.
    var socketDescriptor: Int32 { mosquitto_socket(loop.pointer) }

    /// True while a connection to the broker is up.
    public var isConnected: Bool { state.withLock { $0.phase == .connected } }

    /// Connects and waits for the broker's acceptance. Throws a typed error when the
    /// broker is unreachable or refuses; after success, the client reconnects by itself.
    public func connect() async throws {
        let startLoop = try state.withLock { state in
            guard state.phase == .idle || state.phase == .closed else {
                throw MQTTError.invalidConfiguration("connect() called twice on the same client")
            }
            state.phase = .connecting
            state.attempt = 0
            defer { state.loopStarted = true }
            return !state.loopStarted
        }
        if startLoop {
            do {
                try loop.start()
            } catch {
                state.withLock { $0.phase = .idle; $0.loopStarted = false }
                throw error
            }
        }
        lastLibraryError.withLock { $0 = nil }
        do {
            _ = try await acknowledgement(of: "connect to \(brokerName)", timeout: configuration.connectTimeout) { state in
                state.connectRequested = true
                loop.wake()
                return .connect
            }
        } catch {
            state.withLock { state in
                state.phase = .idle
                state.connectRequested = false
            }
            mosquitto_disconnect(loop.pointer)
            loop.wake()
            if case MQTTError.timedOut = error, let reason = lastLibraryError.withLock({ $0 }) {
                throw MQTTError.unreachable(broker: brokerName, reason: reason)
            }
            throw error
        }
    }

    /// Publishes `payload` on `topic`. With QoS 1 it returns once the broker
    /// acknowledged the message; a QoS 1 message published while the client is
    /// reconnecting waits for the reconnect, within the acknowledgement timeout.
    public func publish(_ topic: String, payload: Data, qos: MQTTQoS = .atLeastOnce, retain: Bool = false) async throws {
        guard mosquitto_pub_topic_check(topic) == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTError.invalidTopic(topic)
        }
        let deadline = ContinuousClock.now + configuration.acknowledgementTimeout
        while true {
            do {
                return try await publishNow(topic, payload: payload, qos: qos, retain: retain)
            } catch MQTTError.notConnected(let operation) where qos == .atLeastOnce {
                guard try await reconnected(before: deadline) else {
                    throw MQTTError.notConnected(operation: operation)
                }
            }
        }
    }

    private func publishNow(_ topic: String, payload: Data, qos: MQTTQoS, retain: Bool) async throws {
        let phase = state.withLock { $0.phase }
        guard phase == .connected || phase == .reconnecting else {
            throw MQTTError.notConnected(operation: "publish to '\(topic)'")
        }
        _ = try await acknowledgement(of: "publish to '\(topic)'", timeout: configuration.acknowledgementTimeout) { _ in
            var messageId: Int32 = 0
            let rc = payload.withUnsafeBytes { bytes in
                mosquitto_publish(
                    loop.pointer, &messageId, topic, Int32(bytes.count), bytes.baseAddress, qos.rawValue, retain)
            }
            loop.wake()
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                if rc == MOSQ_ERR_NO_CONN.rawValue { throw MQTTError.notConnected(operation: "publish to '\(topic)'") }
                throw MQTTError.invalidConfiguration("cannot publish to '\(topic)': \(describe(rc))")
            }
            return qos == .atLeastOnce ? .publish(messageId) : nil
        }
    }

    /// Waits until the client is connected again; false when it is closed or the
    /// deadline passes first.
    private func reconnected(before deadline: ContinuousClock.Instant) async throws -> Bool {
        let events = connectionEvents()
        switch state.withLock({ $0.phase }) {
        case .connected: return true
        case .reconnecting: break
        case .idle, .connecting, .closed: return false
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await event in events where event == .connected { return true }
                return false
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return false
            }
            let result = await group.next() ?? false
            group.cancelAll()
            return result
        }
    }

    /// Publishes a text payload.
    public func publish(_ topic: String, text: String, qos: MQTTQoS = .atLeastOnce, retain: Bool = false) async throws {
        try await publish(topic, payload: Data(text.utf8), qos: qos, retain: retain)
    }

    /// Subscribes to `filter` (wildcards `+` and `#` allowed) and calls `handler` on
    /// the client's network thread for each matching message; keep it short. The
    /// subscription is restored after every reconnect. Subscribing to a filter again
    /// replaces its handler.
    public func subscribe(
        _ filter: String, qos: MQTTQoS = .atLeastOnce, handler: @escaping @Sendable (MQTTMessage) -> Void
    ) async throws {
        guard mosquitto_sub_topic_check(filter) == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTError.invalidFilter(filter)
        }
        let operation = "subscribe to '\(filter)'"
        let granted = try await acknowledgement(of: operation, timeout: configuration.acknowledgementTimeout) { state in
            state.subscriptions[filter] = Subscription(qos: qos, handler: handler)
            guard state.phase == .connected else { return nil }
            var messageId: Int32 = 0
            let rc = mosquitto_subscribe(loop.pointer, &messageId, filter, qos.rawValue)
            loop.wake()
            if rc == MOSQ_ERR_NO_CONN.rawValue { return nil }
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                state.subscriptions.removeValue(forKey: filter)
                throw MQTTError.invalidConfiguration("cannot subscribe to '\(filter)': \(describe(rc))")
            }
            return .subscribe(messageId)
        }
        if granted.contains(where: { $0 > 2 }) {
            state.withLock { _ = $0.subscriptions.removeValue(forKey: filter) }
            throw MQTTError.subscriptionRefused(filter: filter)
        }
    }

    /// Subscribes to `filter` and returns its messages as a stream, ended by `disconnect()`.
    public func messages(_ filter: String, qos: MQTTQoS = .atLeastOnce) async throws -> AsyncStream<MQTTMessage> {
        let (stream, continuation) = AsyncStream.makeStream(of: MQTTMessage.self)
        let id = UUID()
        state.withLock { $0.messageSinks[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.messageSinks.removeValue(forKey: id) }
        }
        try await subscribe(filter, qos: qos) { message in continuation.yield(message) }
        return stream
    }

    /// Stops delivering messages for `filter` once the broker confirmed it, so every
    /// message the broker sent before (the retained ones of a new subscription) is
    /// still handled. Without a connection it only forgets the subscription.
    public func unsubscribe(_ filter: String) async throws {
        do {
            _ = try await acknowledgement(of: "unsubscribe from '\(filter)'", timeout: configuration.acknowledgementTimeout) { state in
                guard state.phase == .connected else { return nil }
                var messageId: Int32 = 0
                let rc = mosquitto_unsubscribe(loop.pointer, &messageId, filter)
                loop.wake()
                return rc == MOSQ_ERR_SUCCESS.rawValue ? .unsubscribe(messageId) : nil
            }
        } catch {
            state.withLock { _ = $0.subscriptions.removeValue(forKey: filter) }
            throw error
        }
        state.withLock { _ = $0.subscriptions.removeValue(forKey: filter) }
    }

    /// The messages the broker holds retained on `filter` now, one per topic: subscribes,
    /// collects what the broker sends for the new subscription, and unsubscribes. A hub that
    /// subscribes through `$share/…`, which delivers no retained message, catches up
    /// with it on every (re)connect.
    ///
    /// The broker queues the retained messages behind its SUBACK and sends no more of
    /// them at a time than its in-flight window (mosquitto: 20); its UNSUBACK overtakes
    /// the rest. With many topics, pass `endMarker`, a topic this client may publish and
    /// subscribe to that nobody else uses: a message published there after subscribing
    /// comes back behind every retained one, and only then does this unsubscribe.
    public func retainedMessages(_ filter: String, qos: MQTTQoS = .atLeastOnce, endMarker: String? = nil) async throws -> [MQTTMessage] {
        // One per topic: a message that also matches another subscription (the same
        // filter under `$share/`, which some brokers do send retained messages to) is
        // handed to this handler too.
        let collected = Mutex<[String: MQTTMessage]>([:])
        try await subscribe(filter, qos: qos) { message in
            if message.retained { collected.withLock { $0[message.topic] = message } }
        }
        if let endMarker { try await waitForQueuedMessages(behind: endMarker, qos: qos) }
        try await unsubscribe(filter)
        return collected.withLock { $0.values.sorted { $0.topic < $1.topic } }
    }

    /// Publishes an empty message to `marker` and returns once it came back, so every
    /// message the broker had queued for this client before has been handled.
    private func waitForQueuedMessages(behind marker: String, qos: MQTTQoS) async throws {
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self)
        try await subscribe(marker, qos: qos) { _ in arrived.yield() }
        try await publish(marker, payload: Data(), qos: qos)
        let operation = "read the retained messages up to the marker '\(marker)' (check that the ACL lets this client publish and subscribe to it)"
        let came = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in arrivals { return true }
                return false
            }
            group.addTask { [timeout = configuration.acknowledgementTimeout] in
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            arrived.finish()
            group.cancelAll()
            return first
        }
        try? await unsubscribe(marker)
        guard came else { throw MQTTError.timedOut(operation: operation) }
    }

    /// A stream of connection changes from now on, ended by `disconnect()`.
    public func connectionEvents() -> AsyncStream<MQTTConnectionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: MQTTConnectionEvent.self)
        let id = UUID()
        state.withLock { $0.eventSinks[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.eventSinks.removeValue(forKey: id) }
        }
        return stream
    }

    /// Disconnects cleanly: the broker does not publish the last will. Operations
    /// still waiting fail with `MQTTError.disconnected`.
    public func disconnect() {
        let wasOpen = state.withLock { state -> Bool in
            let open = state.phase != .idle && state.phase != .closed
            state.phase = .closed
            return open
        }
        guard wasOpen else { return }
        // The network thread writes the DISCONNECT, then libmosquitto closes the socket.
        mosquitto_disconnect(loop.pointer)
        loop.wake()
        finishAll(reason: Self.closedReason)
    }

    private static let closedReason = "closed by the client"

    /// Cuts the network connection without an MQTT DISCONNECT, as a crash or a pulled
    /// cable would: the broker publishes the last will. For tests of that behaviour.
    func dropConnectionWithoutDisconnect() {
        state.withLock { $0.phase = .closed }
        let socket = mosquitto_socket(loop.pointer)
        if socket >= 0 {
            // The network thread then reads the end of the stream and libmosquitto closes it.
            shutdown(socket, Int32(SHUT_RDWR))
        }
        finishAll(reason: "connection dropped")
    }

    // MARK: - Setup

    private func apply(_ configuration: MQTTConfiguration) throws {
        let pointer = loop.pointer
        guard (1...65535).contains(configuration.publishesInFlight),
            mosquitto_int_option(pointer, MOSQ_OPT_SEND_MAXIMUM, Int32(configuration.publishesInFlight)) == MOSQ_ERR_SUCCESS.rawValue
        else {
            throw MQTTError.invalidConfiguration("publishes in flight: \(configuration.publishesInFlight) is not between 1 and 65535")
        }
        if configuration.username != nil || configuration.password != nil {
            let rc = mosquitto_username_pw_set(pointer, configuration.username, configuration.password)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MQTTError.invalidConfiguration("user name or password: \(describe(rc))")
            }
        }
        if let will = configuration.will {
            let rc = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set(pointer, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos.rawValue, will.retain)
            }
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MQTTError.invalidConfiguration("last will on '\(will.topic)': \(describe(rc))")
            }
        }
        if let tls = configuration.tls {
            for file in [tls.caFile, tls.certFile, tls.keyFile].compactMap({ $0 })
            where !FileManager.default.isReadableFile(atPath: file) {
                throw MQTTError.invalidConfiguration("TLS file '\(file)' does not exist or is not readable")
            }
            var rc = mosquitto_tls_set(pointer, tls.caFile, nil, tls.certFile, tls.keyFile, nil)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MQTTError.invalidConfiguration("TLS files: \(describe(rc))")
            }
            rc = mosquitto_tls_opts_set(pointer, 1, "tlsv1.2", nil)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MQTTError.invalidConfiguration("TLS options: \(describe(rc))")
            }
            mosquitto_tls_insecure_set(pointer, false)
        }
    }

    private func installCallbacks() {
        let pointer = loop.pointer
        mosquitto_connect_callback_set(pointer) { _, userdata, rc in
            MQTTClient.from(userdata)?.didConnect(rc)
        }
        mosquitto_disconnect_callback_set(pointer) { _, userdata, rc in
            MQTTClient.from(userdata)?.didDisconnect(rc)
        }
        mosquitto_publish_callback_set(pointer) { _, userdata, messageId in
            MQTTClient.from(userdata)?.complete(.publish(messageId), with: .success([]))
        }
        mosquitto_unsubscribe_callback_set(pointer) { _, userdata, messageId in
            MQTTClient.from(userdata)?.complete(.unsubscribe(messageId), with: .success([]))
        }
        mosquitto_subscribe_callback_set(pointer) { _, userdata, messageId, count, granted in
            let values = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? []
            MQTTClient.from(userdata)?.complete(.subscribe(messageId), with: .success(values))
        }
        mosquitto_message_callback_set(pointer) { _, userdata, message in
            guard let message = message?.pointee, let client = MQTTClient.from(userdata) else { return }
            client.deliver(message)
        }
        mosquitto_log_callback_set(pointer) { _, userdata, level, text in
            guard level & Int32(MOSQ_LOG_ERR) != 0, let text else { return }
            let line = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty else { return }
            MQTTClient.from(userdata)?.lastLibraryError.withLock { $0 = line }
        }
    }

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient? {
        guard let userdata else { return nil }
        return Unmanaged<MQTTClient>.fromOpaque(userdata).takeUnretainedValue()
    }

    // MARK: - Callbacks (on the network thread)

    private func didConnect(_ rc: Int32) {
        guard rc == 0 else {
            let refusal = MQTTRefusal(rawValue: rc)
            let reason = refusal.map { "\($0)" } ?? "CONNACK code \(rc)"
            logger.warning("broker refused the connection", metadata: ["broker": "\(brokerName)", "reason": "\(reason)"])
            let error: any Error = refusal.map { MQTTError.connectionRefused($0, broker: brokerName) }
                ?? MQTTError.unreachable(broker: brokerName, reason: reason)
            if state.withLock({ $0.phase }) == .reconnecting {
                connectionFailed(reason: "connection refused: \(reason)")
            }
            complete(.connect, with: .failure(error))
            return
        }
        let accepted = state.withLock { state -> (subscriptions: [String: Subscription], sinks: [AsyncStream<MQTTConnectionEvent>.Continuation], wasReconnect: Bool)? in
            guard state.phase == .connecting || state.phase == .reconnecting else { return nil }
            let wasReconnect = state.phase == .reconnecting
            state.phase = .connected
            state.connectedAt = .now
            state.attemptFailed = false
            state.reportedReason = nil
            return (state.subscriptions, Array(state.eventSinks.values), wasReconnect)
        }
        // A CONNACK after `connect()` gave up or `disconnect()` changes nothing.
        guard let accepted else { return }
        lastLibraryError.withLock { $0 = nil }
        for (filter, subscription) in accepted.subscriptions {
            mosquitto_subscribe(loop.pointer, nil, filter, subscription.qos.rawValue)
        }
        if accepted.wasReconnect {
            logger.info("reconnected to the broker", metadata: ["broker": "\(brokerName)"])
        }
        for sink in accepted.sinks { sink.yield(.connected) }
        complete(.connect, with: .success([]))
    }

    private func didDisconnect(_ rc: Int32) {
        state.withLock { $0.disconnectCallbackRan = true }
        // rc 0 is the end of a clean `disconnect()`, which reports by itself; a refused
        // CONNACK was reported by `didConnect` with the broker's reason.
        guard rc != MOSQ_ERR_SUCCESS.rawValue, rc != MOSQ_ERR_CONN_REFUSED.rawValue else { return }
        failed(reason: reason(for: rc))
    }

    /// A connection, or an attempt at one, ended with `reason`: fails a waiting
    /// `connect()`, or reports the loss and schedules the next reconnect.
    private func failed(reason: String) {
        let phase = state.withLock { $0.phase }
        switch phase {
        case .connecting:
            state.withLock { $0.attemptFailed = true }
            complete(.connect, with: .failure(MQTTError.unreachable(broker: brokerName, reason: reason)))
        case .connected, .reconnecting:
            connectionFailed(reason: reason)
        case .idle, .closed:
            break
        }
    }

    /// Reports a lost connection or a failed reconnect, once per distinct reason, and
    /// sets when the next attempt is due.
    private func connectionFailed(reason: String) {
        var generator = SystemRandomNumberGenerator()
        let backoff = configuration.reconnectBackoff
        let report = state.withLock { state -> (sinks: [AsyncStream<MQTTConnectionEvent>.Continuation], lost: Bool, retryIn: Duration)? in
            let lost = state.phase == .connected
            if lost {
                state.phase = .reconnecting
                state.attempt = backoff.nextAttempt(after: state.attempt, uptime: .now - state.connectedAt)
                state.nextReconnect = .now + backoff.delay(attempt: state.attempt, using: &generator)
            }
            // The attempt is over: the next one may begin when due, even on a socket
            // libmosquitto left open.
            state.attemptFailed = true
            guard lost || state.reportedReason != reason else { return nil }
            state.reportedReason = reason
            return (Array(state.eventSinks.values), lost, max(.zero, state.nextReconnect - .now))
        }
        guard let report else { return }
        let metadata: Logger.Metadata = [
            "broker": "\(brokerName)", "reason": "\(reason)", "retryIn": "\(Int(report.retryIn / .milliseconds(1))) ms",
        ]
        if report.lost {
            logger.warning("lost the broker connection; reconnecting", metadata: metadata)
        } else {
            logger.warning("cannot reconnect to the broker; retrying", metadata: metadata)
        }
        for sink in report.sinks { sink.yield(.disconnected(reason: reason)) }
    }

    private func deliver(_ raw: mosquitto_message) {
        guard let topicPointer = raw.topic else { return }
        let topic = String(cString: topicPointer)
        let payload = raw.payload.map { Data(bytes: $0, count: Int(raw.payloadlen)) } ?? Data()
        let message = MQTTMessage(
            topic: topic, payload: payload, qos: MQTTQoS(rawValue: raw.qos) ?? .atLeastOnce, retained: raw.retain)
        let handlers = state.withLock { state in
            state.subscriptions.filter { filter, _ in
                var matches = false
                return mosquitto_topic_matches_sub(Self.topicFilter(of: filter), topic, &matches) == MOSQ_ERR_SUCCESS.rawValue && matches
            }.map(\.value.handler)
        }
        for handler in handlers { handler(message) }
    }

    /// The topic filter inside a shared subscription `$share/GROUP/FILTER` (messages
    /// arrive on their own topics, without the prefix); any other filter unchanged.
    static func topicFilter(of filter: String) -> String {
        guard filter.hasPrefix("$share/") else { return filter }
        let parts = filter.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count == 3 ? String(parts[2]) : filter
    }

    // MARK: - Waiting for acknowledgements

    /// Runs `start` under the state lock; when it returns a key, waits until the
    /// broker's answer for that key arrives or `timeout` passes. Registering the
    /// waiter under the same lock as the C call means no answer can come first.
    private func acknowledgement(
        of operation: String, timeout: Duration, start: (inout State) throws -> PendingKey?
    ) async throws -> [Int32] {
        let timer = Mutex<Task<Void, Never>?>(nil)
        defer { timer.withLock { $0?.cancel() } }
        return try await withCheckedThrowingContinuation { continuation in
            let key: PendingKey?
            do {
                key = try state.withLock { state in
                    let key = try start(&state)
                    if let key { state.waiters[key] = continuation }
                    return key
                }
            } catch {
                continuation.resume(throwing: error)
                return
            }
            guard let key else {
                continuation.resume(returning: [])
                return
            }
            timer.withLock {
                $0 = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled else { return }
                    self?.complete(key, with: .failure(MQTTError.timedOut(operation: operation)))
                }
            }
        }
    }

    private func complete(_ key: PendingKey, with result: Result<[Int32], any Error>) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: key) }
        waiter?.resume(with: result)
    }

    private func finishAll(reason: String) {
        let (waiters, sinks, streams) = state.withLock { state in
            defer {
                state.waiters.removeAll()
                state.eventSinks.removeAll()
                state.messageSinks.removeAll()
            }
            return (state.waiters, state.eventSinks, state.messageSinks)
        }
        for (key, waiter) in waiters {
            waiter.resume(throwing: MQTTError.disconnected(operation: "\(key)"))
        }
        for sink in sinks.values {
            sink.yield(.disconnected(reason: reason))
            sink.finish()
        }
        for stream in streams.values { stream.finish() }
    }

    /// libmosquitto's reason for `rc`, with the error it logged on the way (OpenSSL's
    /// reason for a TLS failure, say), which is then used up.
    private func reason(for rc: Int32) -> String {
        let logged = lastLibraryError.withLock { error in
            defer { error = nil }
            return error
        }
        var reason = describe(rc)
        if reason.hasSuffix(".") { reason.removeLast() }
        guard let logged, !reason.contains(logged) else { return reason }
        return "\(reason): \(logged)"
    }

    private func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue {
            return String(cString: strerror(errno))
        }
        return String(cString: mosquitto_strerror(rc))
    }

    // MARK: - The network thread

    /// One turn of the network thread, at most a second long: opens a requested
    /// connection, reconnects when one is due, or waits for the socket and lets
    /// libmosquitto read, write and keep the connection alive.
    fileprivate func turn() {
        let pointer = loop.pointer
        let now = ContinuousClock.now
        let socket = mosquitto_socket(pointer)
        let action = state.withLock { state -> Action in
            if state.connectRequested {
                state.connectRequested = false
                state.attemptStarted = now
                state.attemptFailed = false
                return .connect
            }
            let live = socket >= 0 && !state.attemptFailed
            let attemptOver = !live || now - state.attemptStarted >= configuration.connectTimeout
            if state.phase == .reconnecting, attemptOver {
                guard now >= state.nextReconnect else { return .wait(until: state.nextReconnect) }
                var generator = SystemRandomNumberGenerator()
                state.attempt += 1
                state.nextReconnect = now + configuration.reconnectBackoff.delay(attempt: state.attempt, using: &generator)
                state.attemptStarted = now
                state.attemptFailed = false
                return live ? .abandonAttempt : .reconnect
            }
            return live ? .service(socket) : .wait(until: now + .seconds(1))
        }
        switch action {
        case .connect:
            errno = 0
            let rc = mosquitto_connect_async(
                pointer, configuration.host, Int32(configuration.port), Int32(configuration.keepAliveSeconds))
            recordConnectErrno()
            if rc != MOSQ_ERR_SUCCESS.rawValue { failed(reason: reason(for: rc)) }
        case .abandonAttempt:
            connectionFailed(reason: "the broker did not answer within \(configuration.connectTimeout)")
            state.withLock { $0.attemptStarted = .now }
            reconnect()
        case .reconnect:
            reconnect()
        case .wait(let deadline):
            loop.wait(socket: nil, writing: false, until: min(deadline, now + .seconds(1)))
        case .service(let socket):
            service(socket)
        }
    }

    private func reconnect() {
        errno = 0
        let rc = mosquitto_reconnect_async(loop.pointer)
        recordConnectErrno()
        if rc != MOSQ_ERR_SUCCESS.rawValue { failed(reason: reason(for: rc)) }
    }

    private func recordConnectErrno() {
        let code = errno
        let failure = [ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT].contains(code)
        state.withLock { $0.connectErrno = failure ? code : 0 }
    }

    private enum Action {
        case connect, reconnect, abandonAttempt
        case wait(until: ContinuousClock.Instant)
        case service(Int32)
    }

    /// Waits up to a second for `socket`, then reads what arrived, writes what is
    /// queued, and sends keep-alive pings. Any error ends the connection with its reason.
    private func service(_ socket: Int32) {
        let pointer = loop.pointer
        let events = loop.wait(socket: socket, writing: mosquitto_want_write(pointer), until: .now + .seconds(1))
        state.withLock { $0.disconnectCallbackRan = false }
        // A refused or unreachable connect: libmosquitto's TLS handshake takes the
        // socket's error for "try again" and would wait out the connect timeout.
        if events.broken, let error = connectError(of: socket) {
            failed(reason: error)
            return
        }
        var rc = MOSQ_ERR_SUCCESS.rawValue
        if events.readable {
            rc = mosquitto_loop_read(pointer, 1)
        }
        if rc == MOSQ_ERR_SUCCESS.rawValue, events.writable, mosquitto_socket(pointer) >= 0 {
            rc = mosquitto_loop_write(pointer, 1)
            // During a TLS handshake only loop_read drives OpenSSL, even when it waits to write.
            if rc == MOSQ_ERR_SUCCESS.rawValue, mosquitto_want_write(pointer), mosquitto_socket(pointer) >= 0 {
                rc = mosquitto_loop_read(pointer, 1)
            }
        }
        if rc == MOSQ_ERR_SUCCESS.rawValue, mosquitto_socket(pointer) >= 0 {
            rc = mosquitto_loop_misc(pointer)
        }
        guard rc != MOSQ_ERR_SUCCESS.rawValue, rc != MOSQ_ERR_NO_CONN.rawValue,
            !state.withLock({ $0.disconnectCallbackRan })
        else { return }
        // libmosquitto reports most errors through the disconnect callback; a failed
        // TLS handshake closes the socket without it.
        failed(reason: reason(for: rc))
    }

    /// Why the connect on `socket`, which the broker has not accepted yet, failed
    /// (`Connection refused`); nil when it is not a connect failure, which libmosquitto
    /// then reports itself (a TLS error, say).
    private func connectError(of socket: Int32) -> String? {
        let (waiting, recorded) = state.withLock { state in
            (state.phase == .connecting || state.phase == .reconnecting, state.connectErrno)
        }
        guard waiting else { return nil }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error != 0 {
            return String(cString: strerror(error))
        }
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let connected = withUnsafeMutablePointer(to: &peer) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &peerLength) == 0 }
        }
        guard !connected, recorded != 0 else { return nil }
        return String(cString: strerror(recorded))
    }
}

/// The `mosquitto *` of one client, and the thread that drives it. The thread holds
/// this, not the client, so a client nobody holds any more goes away; the thread then
/// writes what is still queued (the DISCONNECT of `disconnect()`), ends, and the
/// last reference destroys the `mosquitto *`.
private final class NetworkLoop: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Set once before the thread starts; read only by the thread.
    weak var client: MQTTClient?
    private let released = Atomic(false)
    /// A pipe whose write end wakes the thread from `poll()` when a packet is queued.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(_ pointer: OpaquePointer) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            let reason = String(cString: strerror(errno))
            mosquitto_destroy(pointer)
            throw MQTTError.invalidConfiguration("cannot make the network thread's wake-up pipe: \(reason)")
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        self.pointer = pointer
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    deinit {
        mosquitto_destroy(pointer)
        close(wakeRead)
        close(wakeWrite)
    }

    func start() throws {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { context in
            let loop = Unmanaged<NetworkLoop>.fromOpaque(context!).takeRetainedValue()
            loop.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<NetworkLoop>.fromOpaque(context).release()
            throw MQTTError.invalidConfiguration("cannot start the network thread: \(String(cString: strerror(rc)))")
        }
        pthread_detach(thread)
    }

    /// Called at the end of the client's `deinit`, after which no callback may use it.
    func clientReleased() {
        released.store(true, ordering: .releasing)
        wake()
    }

    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func run() {
        while let client {
            client.turn()
        }
        while !released.load(ordering: .acquiring) {
            _ = wait(socket: nil, writing: false, until: .now + .milliseconds(100))
        }
        flush(until: .now + .seconds(2))
    }

    /// Writes what is still queued, for a client that is gone, until libmosquitto
    /// closes the socket after the DISCONNECT or `deadline` passes.
    private func flush(until deadline: ContinuousClock.Instant) {
        while ContinuousClock.now < deadline {
            let socket = mosquitto_socket(pointer)
            guard socket >= 0, mosquitto_want_write(pointer) else { return }
            let events = wait(socket: socket, writing: true, until: deadline)
            if events.writable, mosquitto_loop_write(pointer, 1) != MOSQ_ERR_SUCCESS.rawValue { return }
            if events.readable, mosquitto_loop_read(pointer, 1) != MOSQ_ERR_SUCCESS.rawValue { return }
        }
    }

    /// `poll()`s `socket` (if any) and the wake-up pipe until one is ready or
    /// `deadline` passes. Unlike `select()`, `poll()` takes descriptors of any number.
    @discardableResult
    func wait(socket: Int32?, writing: Bool, until deadline: ContinuousClock.Instant) -> (readable: Bool, writable: Bool, broken: Bool) {
        let remaining = max(.zero, deadline - .now)
        let milliseconds = Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
        var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        if let socket {
            descriptors.append(pollfd(fd: socket, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0))
        }
        guard poll(&descriptors, nfds_t(descriptors.count), milliseconds) > 0 else { return (false, false, false) }
        if descriptors[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(wakeRead, &buffer, buffer.count) > 0 {}
        }
        guard socket != nil else { return (false, false, false) }
        let events = descriptors[1].revents
        let broken = events & Int16(POLLERR | POLLHUP | POLLNVAL) != 0
        return (events & Int16(POLLIN) != 0 || broken, events & Int16(POLLOUT) != 0, broken)
    }
}
