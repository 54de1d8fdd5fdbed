import FleetCore
@testable import FleetHub
import Foundation
import Testing

/// The rules from stored reports to online/offline, rollouts and alerts, without a broker or a clock.
struct HealthDerivationTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = HealthPolicy(heartbeatTimeout: 30, offlineAlertAfter: 300, restartLoopRestarts: 3, deploymentFailureRate: 0.1)

    func stored(seen: TimeInterval, online: Bool? = true, connectionChanged: TimeInterval? = nil, reported: TimeInterval? = nil) -> StoredHealth {
        StoredHealth(
            report: nil, reportedAt: reported.map { now.addingTimeInterval(-$0) }, lastSeenAt: now.addingTimeInterval(-seen),
            online: online, connectionChangedAt: connectionChanged.map { now.addingTimeInterval(-$0) })
    }

    @Test func connectivityFollowsTheLastWillAndTheHeartbeat() {
        #expect(HealthDerivation.connectivity(of: nil, now: now, policy: policy).0 == .unknown)
        #expect(HealthDerivation.connectivity(of: stored(seen: 5), now: now, policy: policy).0 == .online)
        let silent = HealthDerivation.connectivity(of: stored(seen: 40), now: now, policy: policy)
        #expect(silent.0 == .offline)
        #expect(silent.offlineSince == now.addingTimeInterval(-10))
        let will = HealthDerivation.connectivity(
            of: stored(seen: 1, online: false, connectionChanged: 1, reported: 20), now: now, policy: policy)
        #expect(will.0 == .offline)
        #expect(will.offlineSince == now.addingTimeInterval(-1))
        // A report after the last will means the device is back.
        let back = stored(seen: 1, online: false, connectionChanged: 20, reported: 1)
        #expect(HealthDerivation.connectivity(of: back, now: now, policy: policy).0 == .online)
    }

    func deployment(_ modules: [(String, DesiredStatus)] = [("iris", .running)]) throws -> ResolvedDeployment {
        try ResolvedDeployment(
            name: "prod", priority: 1, target: "*",
            modules: modules.map { name, status in
                ResolvedDeployment.Module(
                    name: name, bundle: "\(name):1", kind: .pythonScoring, digest: ContentDigest(of: Data(name.utf8)), size: 1,
                    desiredStatus: status, restartPolicy: .always, startupOrder: 0, workers: 1, env: [:], telemetry: TelemetrySettings())
            },
            sequence: 1, createdAt: now, updatedAt: now)
    }

    @Test func rolloutStateComparesTheReportedRevisionWithTheStagedOne() throws {
        let prod = try deployment([("iris", .running), ("idle", .stopped)])
        func state(_ desired: Int?, _ report: HealthReport?) -> RolloutState {
            HealthDerivation.rolloutState(of: prod, desiredRevision: desired, report: report)
        }
        #expect(state(3, nil) == .pending)
        #expect(state(3, HealthFixture.report("d", revision: 2)) == .pending)
        #expect(state(3, HealthFixture.report("d", revision: 3, status: .applying)) == .pending)
        #expect(state(3, HealthFixture.report("d", revision: 3)) == .applied)
        #expect(state(3, HealthFixture.report("d", revision: 3, status: .failed, error: "bad digest")) == .failed)
        #expect(state(3, HealthFixture.report("d", revision: 3, status: .rolledBack)) == .rolledBack)
        let crashing = HealthFixture.report("d", revision: 3, modules: [HealthFixture.module("iris", status: .backoff)])
        #expect(state(3, crashing) == .moduleNotRunning)
    }

    @Test func rolloutCountsEveryStateAndKeepsErrors() throws {
        let rollout = HealthDerivation.rollout(
            of: try deployment(), targeted: ["c", "a", "b"], desiredRevisions: ["a": 2, "b": 2, "c": 2],
            reports: ["a": HealthFixture.report("a", revision: 2), "b": HealthFixture.report("b", revision: 2, status: .failed, error: "no space")])
        #expect(rollout.targeted == 3)
        #expect(rollout.devices.map(\.deviceId) == ["a", "b", "c"])
        #expect(rollout.count(.applied) == 1)
        #expect(rollout.count(.failed) == 1)
        #expect(rollout.count(.pending) == 1)
        #expect(rollout.count(.rolledBack) == 0)
        #expect(rollout.devices[1].error == "no space")
    }

    @Test func alertsForLongOfflineRestartLoopsAndFailingDeployments() throws {
        func summary(_ id: String, offlineFor: TimeInterval?) -> DeviceHealthSummary {
            DeviceHealthSummary(
                id: id, tags: [:], connectivity: offlineFor == nil ? .online : .offline, modulesRunning: 1, modulesTotal: 1,
                restarts: 0, lastSeen: now, offlineSince: offlineFor.map { now.addingTimeInterval(-$0) }, running: [])
        }
        let reports = [
            "loop": HealthFixture.report("loop", modules: [HealthFixture.module("iris", status: .backoff, restarts: 5, error: "exit 1")]),
            "fine": HealthFixture.report("fine", modules: [HealthFixture.module("iris", status: .running, restarts: 5)]),
        ]
        let failing = HealthDerivation.rollout(
            of: try deployment(), targeted: ["loop", "fine"], desiredRevisions: ["loop": 1, "fine": 1],
            reports: ["loop": HealthFixture.report("loop", status: .rolledBack), "fine": HealthFixture.report("fine")])
        let alerts = HealthDerivation.alerts(
            summaries: [summary("gone", offlineFor: 600), summary("blip", offlineFor: 60), summary("loop", offlineFor: nil), summary("fine", offlineFor: nil)],
            reports: reports, rollouts: [failing], now: now, policy: policy)
        #expect(alerts.map(\.kind) == [.deviceOffline, .restartLoop, .deploymentFailing])
        #expect(alerts.map(\.subject) == ["gone", "loop/iris", "prod"])
        #expect(alerts[1].message.contains("exit 1"))
        #expect(alerts[2].message.contains("1 of 2 devices (50%)"))
    }

    @Test func decoderRejectsEachKindOfBadMessage() throws {
        let decoder = HealthMessageDecoder(maximumBytes: 10_000)
        let registered: (String) -> Bool = { $0 == "gw-1" || $0 == "gw-2" }
        func decode(_ topic: String, _ payload: Data) -> Result<HealthMessage, HealthRejection> {
            decoder.decode(MQTTMessage(topic: topic, payload: payload, qos: .atLeastOnce, retained: false), isRegistered: registered)
        }
        let good = try FleetJSON.encode(HealthFixture.report("gw-1"))
        #expect(try decode(Topics.reported("gw-1"), good).get() == .report(try FleetJSON.decode(HealthReport.self, from: good)))
        #expect(try decode(Topics.connection("gw-1"), Data(#"{"online":false}"#.utf8)).get() == .connection(deviceId: "gw-1", ConnectionState(online: false)))
        #expect(decode(Topics.reported("gw-1"), Data("{".utf8)).failureReason == "malformed")
        #expect(decode(Topics.reported("gw-1"), Data(#"{"deviceId":"gw-1"}"#.utf8)).failureReason == "malformed")
        #expect(decode(Topics.reported("gw-1"), Data(count: 10_001)).failureReason == "oversized")
        #expect(decode(Topics.reported("ghost"), good).failureReason == "unknown-device")
        #expect(decode(Topics.reported("gw-2"), good).failureReason == "device-mismatch")
        #expect(decode("fleet/v1/devices/gw-1/desired", good).failureReason == "unexpected-topic")
    }
}

extension Result where Failure == HealthRejection {
    var failureReason: String? {
        if case .failure(let rejection) = self { return rejection.reason }
        return nil
    }
}
