import ArgumentParser
import FleetCore
import FleetHub
import Foundation

/// `fleethub devices`: one line per device with what it last reported.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "Show every device's health: online, revision applied/desired, modules running, last seen.",
        discussion: """
            EXAMPLES:
              fleethub devices
              fleethub devices --tag site=plant-1
              fleethub devices --target "role=gateway AND site!=lab" --json
            """)
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var filter: TagFilterOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let now = Date()
        let matches = try filter.matcher()
        let devices = try FleetHealth(workspace: workspace.open()).devices(now: now).filter { matches($0.tags) }
        if output.json { return try Output.json(devices) }
        Output.table(
            ["DEVICE", "STATUS", "REVISION", "MODULES", "RESTARTS", "LAST SEEN", "RUNNING"],
            devices.map { device in
                [device.id, device.connectivity.rawValue, HealthOutput.revision(device), "\(device.modulesRunning)/\(device.modulesTotal)",
                 "\(device.restarts)", device.lastSeen.map { HealthOutput.ago($0, now: now) } ?? "never",
                 device.running.joined(separator: ", ")]
            })
    }
}

/// `fleethub alerts`: what an operator should look at now.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Show active alerts (device offline, module restart loop, deployment failing, rollout halted, revocation list lapsing, input drift) and rejected device messages.", discussion: "EXAMPLES:\n  fleethub alerts\n  fleethub alerts --json")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    struct Alerts: Encodable {
        var alerts: [HealthAlert]
        var rejectedMessages: [RejectionCount]
    }

    func run() throws {
        let health = FleetHealth(workspace: try workspace.open())
        let result = Alerts(alerts: try health.alerts(), rejectedMessages: try health.rejections())
        if output.json { return try Output.json(result) }
        if result.alerts.isEmpty { print("no alerts") }
        for alert in result.alerts { print("\(alert.kind.rawValue)  \(alert.message)") }
        for rejection in result.rejectedMessages {
            print("rejected \(rejection.reason): \(rejection.count), last on \(rejection.lastTopic)")
        }
    }
}

extension DeploymentCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a deployment's rollout: devices targeted, pending, applied, failed, rolled back, module not running.", discussion: "EXAMPLES:\n  fleethub deployment status iris-prod\n  fleethub deployment status iris-prod --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The deployment name.") var name: String

        func run() throws {
            let rollout = try FleetHealth(workspace: workspace.open()).rollout(deployment: name)
            if output.json { return try Output.json(rollout) }
            print("deployment: \(rollout.deployment)")
            print("targeted: \(rollout.targeted)")
            print(RolloutState.allCases.map { "\($0.rawValue): \(rollout.count($0))" }.joined(separator: "  "))
            let now = Date()
            Output.table(
                ["DEVICE", "STATE", "REVISION", "STEP", "RUNNING", "DRIFT", "ERROR"],
                rollout.devices.map { entry in
                    [entry.deviceId, entry.state.rawValue,
                     "\(entry.reportedRevision.map(String.init) ?? "-")/\(entry.desiredRevision.map(String.init) ?? "-")",
                     entry.progress?.text ?? entry.retry.map { HealthOutput.retry($0, now: now) } ?? "",
                     entry.running.joined(separator: ", "), DriftOutput.highest(entry.drift ?? []), entry.error ?? ""]
                })
        }
    }
}

enum HealthOutput {
    static func revision(_ device: DeviceHealthSummary) -> String {
        let status = device.revisionStatus.map { $0 == .applied ? "" : " (\($0.rawValue))" } ?? ""
        return "\(device.reportedRevision.map(String.init) ?? "-")\(status)/\(device.desiredRevision.map(String.init) ?? "-")"
    }

    /// `attempt 3 failed at downloading iris (sha256:3f2a9c01b7d4), next in 38s`.
    static func retry(_ retry: ApplyRetry, now: Date) -> String {
        "attempt \(retry.attempt) failed at \(retry.step), next in \(Int(max(0, retry.nextAttemptAt.timeIntervalSince(now))))s"
    }

    static func ago(_ date: Date, now: Date) -> String {
        "\(Int(max(0, now.timeIntervalSince(date))))s ago"
    }

    static func print(_ health: DeviceHealthDetail) {
        let summary = health.summary
        Swift.print("status: \(summary.connectivity.rawValue)  last seen: \(summary.lastSeen.map { ago($0, now: Date()) } ?? "never")")
        Swift.print("revision reported/desired: \(revision(summary))")
        guard let report = health.report else { return }
        if let error = report.desired.error { Swift.print("revision error: \(error)") }
        if let progress = report.desired.progress { Swift.print("applying: \(progress.text)") }
        if let retry = report.desired.retry { Swift.print("retry: \(Self.retry(retry, now: Date()))") }
        Swift.print("runtime: \(report.runtimeVersion)  uptime: \(report.uptimeSeconds)s  cpu: \(report.system.cpuPercent)%")
        Swift.print("telemetry: \(report.telemetry.buffered) buffered, \(report.telemetry.uploaded) uploaded, \(report.telemetry.dropped) dropped")
        for (module, label) in zip(report.modules, summary.running) {
            let latency = module.inference.map { "  p50 \($0.p50Ms) ms p99 \($0.p99Ms) ms" } ?? ""
            Swift.print("running module: \(label)  \(module.status.rawValue)  restarts \(module.restarts)\(module.lastError.map { "  error: \($0)" } ?? "")\(latency)")
            if let shadow = module.shadow {
                Swift.print(
                    "  shadow: \(shadow.bundleDigest)  \(shadow.status.rawValue)  \(shadow.samples) samples, agreement \(shadow.agreement.map { String(format: "%.4f", $0) } ?? "-"), \(shadow.errors) errors, p99 \(shadow.p99Ms) ms\(shadow.lastError.map { "  error: \($0)" } ?? "")")
            }
            DriftOutput.print(module: module, scores: health.drift.filter { $0.module == module.name })
        }
    }
}
