import FleetCore
import Foundation
import Logging

/// Fetches the last lines of a module's log from a device over MQTT, so an operator
/// reads it from the hub without a shell on the device: a `ModuleLogRequest` on the
/// device's request topic, the `ModuleLogReply` on a reply topic of its own. Only the
/// hub's identities may publish requests (the broker's ACL).
public struct DeviceLogs: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// The last `lines` lines of `module`'s log on `deviceId`, oldest first.
    public func tail(deviceId: String, module: String, lines: Int, timeout: Duration = .seconds(10)) async throws -> ModuleLogReply {
        _ = try DeviceRegistry(workspace: workspace).show(id: deviceId)
        _ = try FleetName.check(module, as: .module)
        guard (1...ModuleLogRequest.maximumLines).contains(lines) else {
            throw DeviceLogsError.badLineCount(lines)
        }
        let requestId = UUID().uuidString.lowercased()
        let request = ModuleLogRequest(
            id: requestId, module: module, lines: lines, expiresAt: Date().addingTimeInterval(Double(timeout.components.seconds)))
        // The commands share one broker identity, so they connect only in their turn.
        let turn = try await PublishingTurn.take(in: workspace)
        defer { turn.end() }
        var configuration = try workspace.brokerConnection(as: .commands, logger: Logger(label: "fleethub.logs"))
        configuration.connectTimeout = .seconds(5)
        configuration.acknowledgementTimeout = .seconds(10)
        let client = try MQTTClient(configuration)
        let broker = try workspace.config().broker
        do {
            try await client.connect()
        } catch {
            throw DeviceLogsError.brokerUnavailable(broker, reason: "\(error)")
        }
        defer { client.disconnect() }
        let replies = try await client.messages(Topics.logReply(deviceId, requestId))
        try await client.publish(Topics.logRequest(deviceId), payload: FleetJSON.encode(request), qos: .atLeastOnce, retain: false)
        let reply = await withTaskGroup(of: ModuleLogReply?.self) { group in
            group.addTask {
                for await message in replies {
                    if let reply = try? FleetJSON.decode(ModuleLogReply.self, from: message.payload), reply.id == requestId {
                        return reply
                    }
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let reply else {
            let lastSeen = try? FleetHealth(workspace: workspace).device(id: deviceId).summary
            throw DeviceLogsError.noAnswer(
                deviceId, seconds: Int(timeout.components.seconds),
                state: lastSeen.map { summary in
                    "the hub has it \(summary.connectivity.rawValue)"
                        + (summary.lastSeen.map { ", last seen \(Int(Date().timeIntervalSince($0))) s ago" } ?? "")
                })
        }
        if let error = reply.error {
            throw DeviceLogsError.refused(deviceId, module: module, reason: error)
        }
        return reply
    }
}

/// Why a module's log could not be fetched from a device.
public enum DeviceLogsError: Error, Equatable, CustomStringConvertible {
    case badLineCount(Int)
    case brokerUnavailable(String, reason: String)
    case noAnswer(String, seconds: Int, state: String?)
    case refused(String, module: String, reason: String)

    public var description: String {
        switch self {
        case .badLineCount(let lines):
            "cannot fetch \(lines) lines: --tail takes 1 to \(ModuleLogRequest.maximumLines)"
        case .brokerUnavailable(let broker, let reason):
            "cannot reach the broker \(broker) to ask the device: \(reason); start the broker (or `fleethub config set broker URL`)"
        case .noAnswer(let device, let seconds, let state):
            "device \(device) did not answer within \(seconds) s"
                + (state.map { " (\($0))" } ?? "")
                + "; it must be online, run an edge-runtime that answers log requests, and the broker's ACL must allow them (rerun `fleethub broker-config` after upgrading)"
        case .refused(let device, let module, let reason):
            "device \(device) cannot send the log of \(module): \(reason)"
        }
    }
}
