import FleetCore
import Foundation
import Logging

/// The device's MQTT session: connects with the device's credentials (retrying with
/// capped back-off while the broker is down), leaves a retained `{"online":false}`
/// last will, announces `{"online":true,…}` retained on every (re)connect, and hands
/// each verified, newer desired state to `onAccepted`. Refused messages are logged
/// with the reason, recorded for reporting, and change nothing. Every connection
/// change and every desired-state message's verification is recorded in the state
/// store (`SessionStatus`), where `edge-runtime check` reads it. It also answers the
/// hub's requests for a module's log (`fleethub device logs`).
public final class DeviceSession: Sendable {
    private let config: DeviceConfig
    private let gate: DesiredStateGate
    private let store: StateStore
    private let logger: Logger
    /// The device's one broker connection; the health reporter publishes on it too.
    let client: MQTTClient
    private let onAccepted: @Sendable (DesiredState) async -> Void
    private let logs: ModuleLogResponder?

    public init(
        config: DeviceConfig, store: StateStore, logger: Logger, logs: ModuleLogResponder? = nil,
        onAccepted: @escaping @Sendable (DesiredState) async -> Void
    ) throws {
        self.config = config
        self.logs = logs
        self.gate = DesiredStateGate(deviceId: config.deviceId, hubKey: try HubPublicKey(base64: config.hub.publicKey))
        self.store = store
        self.logger = logger
        self.onAccepted = onAccepted
        let address = try BrokerAddress(config.broker.url)
        if !address.tls {
            guard config.broker.insecure == true else { throw SessionError.plainMQTT(url: config.broker.url) }
            logger.warning("plain MQTT: anyone on the network can read this device's traffic", metadata: ["broker": "\(config.broker.url)"])
        }
        let offline = try FleetJSON.encode(ConnectionState(online: false))
        client = try MQTTClient(MQTTConfiguration(
            host: address.host, port: address.port, clientId: "edge-runtime-\(config.deviceId)",
            username: config.broker.username, password: config.broker.password,
            tls: address.tls
                ? MQTTTLS(
                    caFile: config.broker.caFile ?? "/etc/ssl/certs/ca-certificates.crt", certFile: config.broker.certFile,
                    keyFile: config.broker.keyFile)
                : nil,
            will: LastWill(topic: Topics.connection(config.deviceId), payload: offline, qos: .atLeastOnce, retain: true),
            logger: logger))
    }

    /// Runs until cancelled: connects, then handles desired-state messages in order.
    /// On cancellation it publishes `{"online":false}` and disconnects cleanly.
    public func run() async {
        guard await connectWithRetry() else { return }
        let events = client.connectionEvents()
        let announcer = Task {
            for await event in events {
                switch event {
                case .connected:
                    recordConnection(connected: true, reason: nil)
                    await announceOnline()
                case .disconnected(let reason):
                    recordConnection(connected: false, reason: reason)
                }
            }
        }
        defer { announcer.cancel() }
        await announceOnline()
        let answering = Task { await answerLogRequests() }
        defer { answering.cancel() }
        let messages: AsyncStream<MQTTMessage>
        do {
            messages = try await client.messages(Topics.desired(config.deviceId))
        } catch {
            logger.error("cannot subscribe to the desired state", metadata: ["error": "\(error)"])
            await goOffline()
            return
        }
        // The stream ends when the task is cancelled.
        for await message in messages {
            await handle(message.payload)
        }
        await goOffline()
    }

    /// Checks one desired-state message and, if it is acceptable, persists and applies it.
    func handle(_ payload: Data) async {
        if payload.isEmpty { return }
        let accepted = (try? store.acceptedRevision()) ?? 0
        let outcome = gate.check(payload, acceptedRevision: accepted)
        recordDesiredState(outcome)
        switch outcome {
        case .failure(let refusal):
            logger.warning("refused a desired-state message", metadata: ["reason": "\(refusal)"])
            try? store.recordRefusal("\(refusal)")
        case .success(let state):
            do {
                guard try store.accept(state) else {
                    let refusal = DesiredStateRefusal.notNewer(revision: state.revision, accepted: try store.acceptedRevision())
                    logger.warning("refused a desired-state message", metadata: ["reason": "\(refusal)"])
                    try? store.recordRefusal("\(refusal)")
                    return
                }
            } catch {
                logger.error("cannot store the desired state; ignoring it", metadata: ["error": "\(error)"])
                return
            }
            logger.info("accepted desired state", metadata: ["revision": "\(state.revision)"])
            await onAccepted(state)
        }
    }

    /// Answers each log request on the device's request topic until cancelled. A broker
    /// whose ACL predates log requests refuses the subscription: logged, nothing else fails.
    private func answerLogRequests() async {
        guard let logs else { return }
        let requests: AsyncStream<MQTTMessage>
        do {
            requests = try await client.messages(Topics.logRequest(config.deviceId))
        } catch {
            logger.warning(
                "cannot subscribe to log requests; `fleethub device logs` will not reach this device until the broker's ACL allows it (rerun `fleethub broker-config`)",
                metadata: ["error": "\(error)"])
            return
        }
        for await message in requests {
            guard let (requestId, reply) = logs.reply(to: message.payload) else {
                logger.warning("ignored a log request that is malformed or expired")
                continue
            }
            do {
                try await client.publish(
                    Topics.logReply(config.deviceId, requestId), payload: FleetJSON.encode(reply), qos: .atLeastOnce, retain: false)
            } catch {
                logger.warning("cannot send a module's log to the hub", metadata: ["module": "\(reply.module)", "error": "\(error)"])
            }
        }
    }

    /// Retries on the client's reconnect back-off, so a device that starts while the
    /// broker is down is back as soon after its return as one that lost it.
    private func connectWithRetry() async -> Bool {
        let backoff = client.configuration.reconnectBackoff
        var generator = SystemRandomNumberGenerator()
        var attempt = 1
        while !Task.isCancelled {
            let delay = backoff.delay(attempt: attempt, using: &generator)
            do {
                try await client.connect()
                logger.info("connected to the broker", metadata: ["broker": "\(config.broker.url)"])
                recordConnection(connected: true, reason: nil)
                return true
            } catch {
                recordConnection(connected: false, reason: "\(error)")
                logger.warning(
                    "cannot connect to the broker; modules keep running, retrying",
                    metadata: ["error": "\(error)", "retryIn": "\(Int(delay / .milliseconds(1))) ms"])
            }
            try? await Task.sleep(for: delay)
            attempt += 1
        }
        return false
    }

    private func recordConnection(connected: Bool, reason: String?) {
        recordSession { session in
            session.connected = connected
            session.since = Date()
            session.reason = reason
        }
    }

    private func recordDesiredState(_ outcome: Result<DesiredState, DesiredStateRefusal>) {
        let check: DesiredStateCheck
        switch outcome {
        case .success(let state):
            check = DesiredStateCheck(at: Date(), verified: true, revision: state.revision)
        case .failure(.unverified(let error)):
            check = DesiredStateCheck(at: Date(), verified: false, refusal: "\(error)")
        case .failure(let refusal):
            check = DesiredStateCheck(at: Date(), verified: true, refusal: "\(refusal)")
        }
        recordSession { $0.lastDesiredState = check }
    }

    private func recordSession(_ change: (inout SessionStatus) -> Void) {
        do {
            try store.updateSession(initial: SessionStatus(broker: config.broker.url, connected: false, since: Date()), change)
        } catch {
            logger.warning("cannot record the broker session for `edge-runtime check`", metadata: ["error": "\(error)"])
        }
    }

    private func announceOnline() async {
        do {
            let online = try FleetJSON.encode(ConnectionState(online: true, at: Date(), runtimeVersion: runtimeVersion))
            try await client.publish(Topics.connection(config.deviceId), payload: online, qos: .atLeastOnce, retain: true)
        } catch {
            logger.warning("cannot announce the device online", metadata: ["error": "\(error)"])
        }
    }

    /// A clean disconnect suppresses the last will, so the offline state is published first.
    private func goOffline() async {
        if client.isConnected, let offline = try? FleetJSON.encode(ConnectionState(online: false, at: Date())) {
            try? await client.publish(Topics.connection(config.deviceId), payload: offline, qos: .atLeastOnce, retain: true)
        }
        client.disconnect()
    }
}

/// Why the device's MQTT session cannot be set up.
public enum SessionError: Error, Equatable, CustomStringConvertible {
    case plainMQTT(url: String)

    public var description: String {
        switch self {
        case .plainMQTT(let url):
            "refusing plain MQTT to \(url): anyone on the network could read and forge fleet traffic; use an mqtts:// broker, or set broker.insecure: true in the device config for a test setup"
        }
    }
}
