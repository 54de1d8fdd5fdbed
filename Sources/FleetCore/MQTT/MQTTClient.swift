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
/// connection is retried with capped exponential back-off, and every subscription
/// is sent again after each reconnect. A QoS 1 `publish` returns only after the
/// broker acknowledged it. Nothing of libmosquitto leaves this type.
public final class MQTTClient: Sendable {
    /// The configuration this client was made with.
    public let configuration: MQTTConfiguration
    private let handle: MosquittoHandle
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
    }

    private struct State {
        var phase = Phase.idle
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
        handle = MosquittoHandle(pointer)
        mosquitto_user_data_set(pointer, Unmanaged.passUnretained(self).toOpaque())
        try apply(configuration)
        installCallbacks()
    }

    deinit {
        let phase = state.withLock { $0.phase }
        if phase != .idle && phase != .closed {
            mosquitto_disconnect(handle.pointer)
            mosquitto_loop_stop(handle.pointer, true)
        }
        mosquitto_destroy(handle.pointer)
    }

    /// True while a connection to the broker is up.
    public var isConnected: Bool { state.withLock { $0.phase == .connected } }

    /// Connects and waits for the broker's acceptance. Throws a typed error when the
    /// broker is unreachable or refuses; after success, the client reconnects by itself.
    public func connect() async throws {
        try state.withLock { state in
            guard state.phase == .idle || state.phase == .closed else {
                throw MQTTError.invalidConfiguration("connect() called twice on the same client")
            }
            state.phase = .connecting
        }
        lastLibraryError.withLock { $0 = nil }
        let operation = "connect to \(brokerName)"
        do {
            _ = try await acknowledgement(of: operation, timeout: configuration.connectTimeout) { _ in
                let rc = mosquitto_connect_async(
                    handle.pointer, configuration.host, Int32(configuration.port), Int32(configuration.keepAliveSeconds))
                guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                    throw MQTTError.unreachable(broker: brokerName, reason: describe(rc))
                }
                let loopRC = mosquitto_loop_start(handle.pointer)
                guard loopRC == MOSQ_ERR_SUCCESS.rawValue else {
                    throw MQTTError.invalidConfiguration("cannot start the network thread: \(describe(loopRC))")
                }
                return .connect
            }
        } catch {
            stopNetworkThread()
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
                    handle.pointer, &messageId, topic, Int32(bytes.count), bytes.baseAddress, qos.rawValue, retain)
            }
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
            let rc = mosquitto_subscribe(handle.pointer, &messageId, filter, qos.rawValue)
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

    /// Stops delivering messages for `filter` and tells the broker so.
    public func unsubscribe(_ filter: String) {
        let connected = state.withLock { state in
            state.subscriptions.removeValue(forKey: filter)
            return state.phase == .connected
        }
        if connected {
            mosquitto_unsubscribe(handle.pointer, nil, filter)
        }
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
        mosquitto_disconnect(handle.pointer)
        mosquitto_loop_stop(handle.pointer, false)
        finishAll(reason: Self.closedReason)
    }

    private static let closedReason = "closed by the client"

    /// Cuts the network connection without an MQTT DISCONNECT, as a crash or a pulled
    /// cable would: the broker publishes the last will. For tests of that behaviour.
    func dropConnectionWithoutDisconnect() {
        state.withLock { $0.phase = .closed }
        let socket = mosquitto_socket(handle.pointer)
        mosquitto_loop_stop(handle.pointer, true)
        if socket >= 0 {
            shutdown(socket, Int32(SHUT_RDWR))
        }
        finishAll(reason: "connection dropped")
    }

    // MARK: - Setup

    private func apply(_ configuration: MQTTConfiguration) throws {
        let pointer = handle.pointer
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
        mosquitto_reconnect_delay_set(
            pointer, UInt32(max(1, configuration.reconnectDelaySeconds)),
            UInt32(max(configuration.reconnectDelaySeconds, configuration.maximumReconnectDelaySeconds)), true)
    }

    private func installCallbacks() {
        let pointer = handle.pointer
        mosquitto_connect_callback_set(pointer) { _, userdata, rc in
            MQTTClient.from(userdata)?.didConnect(rc)
        }
        mosquitto_disconnect_callback_set(pointer) { _, userdata, rc in
            MQTTClient.from(userdata)?.didDisconnect(rc)
        }
        mosquitto_publish_callback_set(pointer) { _, userdata, messageId in
            MQTTClient.from(userdata)?.complete(.publish(messageId), with: .success([]))
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
            MQTTClient.from(userdata)?.lastLibraryError.withLock { $0 = String(cString: text) }
        }
    }

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient? {
        guard let userdata else { return nil }
        return Unmanaged<MQTTClient>.fromOpaque(userdata).takeUnretainedValue()
    }

    // MARK: - Callbacks (on libmosquitto's network thread)

    private func didConnect(_ rc: Int32) {
        guard rc == 0 else {
            let refusal = MQTTRefusal(rawValue: rc)
            logger.warning("broker refused the connection", metadata: ["broker": "\(brokerName)", "reason": "\(refusal.map { "\($0)" } ?? "code \(rc)")"])
            let error: any Error = refusal.map { MQTTError.connectionRefused($0, broker: brokerName) }
                ?? MQTTError.unreachable(broker: brokerName, reason: "CONNACK code \(rc)")
            complete(.connect, with: .failure(error))
            return
        }
        let (subscriptions, sinks, wasReconnect) = state.withLock { state in
            let wasReconnect = state.phase == .reconnecting
            state.phase = .connected
            return (state.subscriptions, Array(state.eventSinks.values), wasReconnect)
        }
        for (filter, subscription) in subscriptions {
            mosquitto_subscribe(handle.pointer, nil, filter, subscription.qos.rawValue)
        }
        if wasReconnect {
            logger.info("reconnected to the broker", metadata: ["broker": "\(brokerName)"])
        }
        for sink in sinks { sink.yield(.connected) }
        complete(.connect, with: .success([]))
    }

    private func didDisconnect(_ rc: Int32) {
        let (sinks, wasConnecting) = state.withLock { state -> ([AsyncStream<MQTTConnectionEvent>.Continuation], Bool) in
            guard state.phase == .connected else { return ([], state.phase == .connecting) }
            state.phase = .reconnecting
            return (Array(state.eventSinks.values), false)
        }
        let reason = lastLibraryError.withLock { $0 } ?? describe(rc)
        if wasConnecting {
            complete(.connect, with: .failure(MQTTError.unreachable(broker: brokerName, reason: reason)))
            return
        }
        guard !sinks.isEmpty else { return }
        if rc != 0 {
            logger.warning("lost the broker connection; reconnecting", metadata: ["broker": "\(brokerName)", "reason": "\(reason)"])
        }
        for sink in sinks { sink.yield(.disconnected(reason: reason)) }
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

    private func stopNetworkThread() {
        state.withLock { $0.phase = .idle }
        mosquitto_disconnect(handle.pointer)
        mosquitto_loop_stop(handle.pointer, false)
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

    private func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue {
            return String(cString: strerror(errno))
        }
        return String(cString: mosquitto_strerror(rc))
    }
}

/// The `mosquitto *` of one client. libmosquitto is thread-safe once its network
/// thread runs, which is what makes sharing the pointer across threads sound.
private struct MosquittoHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}
