import FleetCore
import Foundation
import Logging

/// Advances staged rollouts from `fleethub serve`: every `interval` it evaluates each
/// active rollout against the stored health reports, takes the step the rules decide,
/// and publishes what the step staged over its own broker session. While the broker
/// is unreachable (and for a grace period after it returns, so devices can report
/// again) no rollout advances or halts: each one says it is waiting.
public final class RolloutController: Sendable {
    public let workspace: Workspace
    public let store: RolloutStore
    public let interval: Duration
    /// How long after the broker returns before rollouts are evaluated again.
    public let reconnectGrace: Duration
    private let logger: Logger

    public init(
        workspace: Workspace, policy: HealthPolicy? = nil, interval: Duration = .milliseconds(250),
        reconnectGrace: Duration = .seconds(5), logger: Logger = Logger(label: "fleethub.rollout")
    ) {
        self.workspace = workspace
        store = RolloutStore(workspace: workspace, policy: policy)
        self.interval = interval
        self.reconnectGrace = reconnectGrace
        self.logger = logger
    }

    /// Runs until cancelled.
    public func run() async throws {
        var configuration = try workspace.brokerConnection(as: .rollouts, logger: Logger(label: "fleethub.rollout.mqtt"))
        configuration.connectTimeout = .seconds(10)
        configuration.acknowledgementTimeout = .seconds(10)
        let client = try MQTTClient(configuration)
        let broker = try workspace.config().broker
        let publisher = DesiredStatePublisher(workspace: workspace)
        defer { client.disconnect() }
        var connectedSince: ContinuousClock.Instant?
        var everConnected = false
        while !Task.isCancelled {
            if !client.isConnected {
                if connectedSince != nil { logger.warning("rollouts wait: lost the broker \(broker)") }
                connectedSince = nil
                do {
                    try await client.connect()
                    connectedSince = .now
                } catch {
                    note(waiting: "the broker \(broker) is unreachable (\(error)); rollouts wait for it")
                    try? await Task.sleep(for: .seconds(2))
                    continue
                }
            }
            if let since = connectedSince, ContinuousClock.now - since < reconnectGrace {
                // Reports that arrived while the hub did not listen are stale until devices report again.
                if everConnected {
                    note(waiting: "the broker \(broker) is back; waiting for devices to report again")
                }
            } else {
                everConnected = true
                step()
                do {
                    try await publisher.publishPending(using: client)
                } catch {
                    note(waiting: "cannot publish the next step: \(error)")
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func step() {
        do {
            for rollout in try store.advance() {
                if let event = rollout.events.last {
                    let metadata: Logger.Metadata = ["deployment": "\(rollout.deployment)", "version": "\(rollout.version)"]
                    if rollout.state == .halted {
                        logger.warning("rollout \(rollout.deployment) version \(rollout.version) \(event.message)", metadata: metadata)
                    } else {
                        logger.info("rollout \(rollout.deployment) version \(rollout.version): \(event.message)", metadata: metadata)
                    }
                }
            }
        } catch {
            logger.error("cannot advance rollouts: \(error)")
        }
    }

    private func note(waiting reason: String) {
        do {
            try store.setWaiting(reason)
        } catch {
            logger.error("cannot record why rollouts wait: \(error)")
        }
    }
}
