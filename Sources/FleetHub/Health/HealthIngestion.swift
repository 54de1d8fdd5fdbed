import FleetCore
import Foundation
import FleetSQL
import Logging
import Synchronization

/// Counts of what the ingestion accepted and refused since it started, for `/metrics`.
public struct IngestCounters: Codable, Equatable, Sendable {
    public var reports: Int = 0
    public var connectionStates: Int = 0
    /// Refused messages by `HealthRejection.reason`.
    public var rejected: [String: Int] = [:]
    /// Reports per second over the last few seconds.
    public var reportsPerSecond: Double = 0
}

/// The hub's side of fleet health, run by `fleethub serve`: one shared subscription
/// (`$share/fleethub/…`, so several hubs can split the fleet) to every device's
/// `reported` and `connection` topics. Accepted messages are batched into SQLite by a
/// `HealthWriter`; refused ones are counted and logged; alerts are logged as they
/// appear and clear. Nothing a device sends can stop it.
///
/// A shared subscription delivers no retained message, so what devices published
/// while the hub was away (they come back from a broker restart before it does) would
/// wait for their next periodic report. On every connect and reconnect the ingestion
/// therefore reads the retained reports and connection states once (`catchUp`).
public final class HealthIngestion: Sendable {
    public static let shareGroup = "fleethub"
    public static var reportedFilter: String { "$share/\(shareGroup)/\(Topics.allReported)" }
    public static var connectionFilter: String { "$share/\(shareGroup)/\(Topics.allConnection)" }

    public let workspace: Workspace
    public let policy: HealthPolicy
    public let writer: HealthWriter
    /// What this process read of the fleet, for its alerts and the dashboard it serves,
    /// so a read after each batch fetches only what the batch changed.
    public let readCache = FleetReadCache()
    private let decoder: HealthMessageDecoder
    private let flushInterval: Duration
    private let logger: Logger
    private let registered = Mutex<Set<String>>([])
    private let state = Mutex(CounterState())

    private struct CounterState {
        var counters = IngestCounters()
        var recent: [(at: ContinuousClock.Instant, reports: Int)] = []
        var lastLogged: [String: ContinuousClock.Instant] = [:]
        var unlogged: [String: Int] = [:]
    }

    public init(
        workspace: Workspace, policy: HealthPolicy? = nil, decoder: HealthMessageDecoder = HealthMessageDecoder(),
        flushInterval: Duration = .milliseconds(500), logger: Logger = Logger(label: "fleethub.health")
    ) {
        self.workspace = workspace
        self.policy = policy ?? workspace.healthPolicy
        self.decoder = decoder
        self.flushInterval = flushInterval
        self.logger = logger
        writer = HealthWriter(database: workspace.database)
    }

    public var counters: IngestCounters { state.withLock { $0.counters } }

    /// Connects to the workspace's broker, subscribes, and ingests until cancelled;
    /// then writes what is still queued and disconnects.
    public func run(onSubscribed: @Sendable () async -> Void = {}) async throws {
        try refreshRegisteredDevices()
        let client = try MQTTClient(brokerConfiguration())
        let broker = "\(client.configuration.host):\(client.configuration.port)"
        // Until the broker is up, keep trying: the HTTP side serves meanwhile.
        var generator = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            do {
                try await client.connect()
                break
            } catch {
                let delay = client.configuration.reconnectBackoff.delay(attempt: attempt, using: &generator)
                if attempt == 1 || attempt % 60 == 0 {
                    logger.error("cannot ingest device health yet, retrying", metadata: ["error": "\(error)", "retryIn": "\(Int(delay / .milliseconds(1))) ms"])
                }
                attempt += 1
                try await Task.sleep(for: delay)
            }
        }
        defer { client.disconnect() }
        let events = client.connectionEvents()
        try await client.subscribe(Self.reportedFilter) { [self] message in handle(message) }
        try await client.subscribe(Self.connectionFilter) { [self] message in handle(message) }
        logger.info("ingesting device health", metadata: ["broker": "\(broker)"])
        await catchUp(client)
        let reconnects = Task { [self] in
            for await event in events {
                switch event {
                case .connected:
                    logger.info("ingesting device health again", metadata: ["broker": "\(broker)"])
                    await catchUp(client)
                case .disconnected(let reason):
                    logger.warning(
                        "device health is not ingested until the broker is back", metadata: ["broker": "\(broker)", "reason": "\(reason)"])
                }
            }
        }
        defer { reconnects.cancel() }
        await onSubscribed()
        let clock = ContinuousClock()
        var nextHousekeeping = clock.now
        var raised: Set<String> = []
        while !Task.isCancelled {
            try? await Task.sleep(for: flushInterval)
            await flush()
            if clock.now >= nextHousekeeping {
                nextHousekeeping = clock.now.advanced(by: .seconds(2))
                do {
                    try refreshRegisteredDevices()
                    raised = try logAlerts(previously: raised)
                } catch {
                    logger.error("cannot read the fleet's state: \(error)")
                }
            }
        }
        await flush()
    }

    /// Reads every device's retained report, then its retained connection state (so a
    /// last will newer than the report wins), as `handle` does live ones.
    private func catchUp(_ client: MQTTClient) async {
        do {
            let reports = try await client.retainedMessages(Topics.allReported, endMarker: Topics.retainedEndMarker(UUID().uuidString))
            let connections = try await client.retainedMessages(Topics.allConnection, endMarker: Topics.retainedEndMarker(UUID().uuidString))
            for message in reports + connections { handle(message) }
            logger.info(
                "read the devices' retained state",
                metadata: ["reports": "\(reports.count)", "connectionStates": "\(connections.count)"])
        } catch {
            logger.warning("cannot read the devices' retained state; their next reports will tell", metadata: ["error": "\(error)"])
        }
    }

    /// Decodes one message and queues it for the next batch, or counts and logs why not.
    /// Called on the MQTT client's network thread. A retained message (read by
    /// `catchUp`) counts as seen when the device sent it, not now, so a device that
    /// left long ago does not look online.
    public func handle(_ message: MQTTMessage) {
        let result = decoder.decode(message) { id in registered.withLock { $0.contains(id) } }
        switch result {
        case .success(let accepted):
            let now = Date()
            let seen = message.retained ? min(accepted.sentAt ?? now, now) : now
            writer.add(accepted, payload: message.payload, receivedAt: seen)
            state.withLock { state in
                if case .report = accepted { state.counters.reports += 1 } else { state.counters.connectionStates += 1 }
            }
        case .failure(let rejection):
            writer.add(rejection)
            let log = state.withLock { state -> Int? in
                state.counters.rejected[rejection.reason, default: 0] += 1
                let now = ContinuousClock.now
                // One log line per reason every 10 s, so a flood cannot flood the log too.
                if let last = state.lastLogged[rejection.reason], now - last < .seconds(10) {
                    state.unlogged[rejection.reason, default: 0] += 1
                    return nil
                }
                state.lastLogged[rejection.reason] = now
                return state.unlogged.removeValue(forKey: rejection.reason) ?? 0
            }
            if let suppressed = log {
                logger.warning(
                    "\(rejection)", metadata: suppressed > 0 ? ["alsoRejectedSinceLastLog": "\(suppressed)"] : [:])
            }
        }
    }

    /// Reads the registered device ids again, so devices added while serving are accepted.
    public func refreshRegisteredDevices() throws {
        let ids = try workspace.database.read { db in try db.valueSet(as: String.self, "SELECT id FROM device") }
        registered.withLock { $0 = ids }
    }

    private func flush() async {
        do {
            try await writer.flush()
        } catch {
            logger.error("cannot store device health: \(error)")
        }
        state.withLock { state in
            let now = ContinuousClock.now
            state.recent.append((now, state.counters.reports))
            state.recent.removeAll { now - $0.at > .seconds(10) }
            if let first = state.recent.first, let last = state.recent.last, last.at > first.at {
                let seconds = Double((last.at - first.at).components.seconds)
                    + Double((last.at - first.at).components.attoseconds) / 1e18
                state.counters.reportsPerSecond = Double(last.reports - first.reports) / seconds
            }
        }
    }

    private func logAlerts(previously raised: Set<String>) throws -> Set<String> {
        let alerts = try FleetHealth(workspace: workspace, policy: policy, cache: readCache).alerts()
        var current: Set<String> = []
        for alert in alerts {
            let key = "\(alert.kind.rawValue) \(alert.subject)"
            current.insert(key)
            if !raised.contains(key) { logger.warning("alert: \(alert.message)") }
        }
        for key in raised.subtracting(current) { logger.info("alert cleared: \(key)") }
        return current
    }

    private func brokerConfiguration() throws -> MQTTConfiguration {
        var configuration = try workspace.brokerConnection(as: .healthIngestion, logger: Logger(label: "fleethub.health.mqtt"))
        configuration.connectTimeout = .seconds(10)
        configuration.acknowledgementTimeout = .seconds(10)
        return configuration
    }
}
