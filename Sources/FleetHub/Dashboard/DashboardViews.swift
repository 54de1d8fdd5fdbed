import FleetCore
import Foundation

/// What the dashboard's templates show, already formatted: the templates only place
/// strings, so every rule stays in Swift and is tested there.
enum DashboardViews {
    struct Segment { var state: String; var percent: String }

    struct RolloutRow {
        var name: String
        var targeted: Int
        var applied: Int, pending: Int, failed: Int, rolledBack: Int, moduleNotRunning: Int
        var segments: [Segment]

        init(_ rollout: DeploymentRollout) {
            name = rollout.deployment
            targeted = rollout.targeted
            applied = rollout.count(.applied)
            pending = rollout.count(.pending)
            failed = rollout.count(.failed)
            rolledBack = rollout.count(.rolledBack)
            moduleNotRunning = rollout.count(.moduleNotRunning)
            segments = RolloutState.allCases.compactMap { state in
                let count = rollout.count(state)
                guard count > 0, rollout.targeted > 0 else { return nil }
                return Segment(state: state.rawValue, percent: String(format: "%.1f", 100 * Double(count) / Double(rollout.targeted)))
            }
        }
    }

    struct DeviceRow {
        var id: String
        var connectivity: String
        var revision: String
        var modules: String
        var restarts: Int
        var lastSeen: String
        var tags: [String]

        init(_ summary: DeviceHealthSummary, now: Date) {
            id = summary.id
            connectivity = summary.connectivity.rawValue
            let reported = summary.reportedRevision.map { "\($0)" } ?? "-"
            let status = summary.revisionStatus.map { $0 == .applied ? "" : " (\($0.rawValue))" } ?? ""
            revision = "\(reported)\(status) / \(summary.desiredRevision.map { "\($0)" } ?? "-")"
            modules = "\(summary.modulesRunning)/\(summary.modulesTotal)"
            restarts = summary.restarts
            lastSeen = summary.lastSeen.map { DashboardViews.ago($0, now: now) } ?? "never"
            tags = summary.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        }
    }

    struct StatusOption { var value: String; var label: String; var selected: Bool }

    struct Filter {
        var tag: String
        var statuses: [StatusOption]
    }

    struct Counts { var devices: Int, online: Int, offline: Int, unknown: Int, alerts: Int }

    struct AlertRow { var kind: String; var message: String }

    struct StagedRow { var deployment: String, version: Int, state: String, wave: String, updated: String, reason: String }

    struct Overview {
        var counts: Counts
        var alerts: [AlertRow]
        var rollouts: [RolloutRow]
        var staged: [StagedRow]
        /// Stored, not computed: the templates see only stored properties.
        var hasStaged: Bool
        var filter: Filter
        var devices: [DeviceRow]
    }

    /// The overview, with the device table filtered by `tag` ("key=value") and `status`.
    static func overview(
        _ overview: FleetOverview, devices: [DeviceHealthSummary], tag: String, status: String, now: Date
    ) -> Overview {
        let (key, value) = splitTag(tag)
        let shown = devices.filter { device in
            (key.isEmpty || device.tags[key] == value || (value.isEmpty && device.tags[key] != nil))
                && (status.isEmpty || device.connectivity.rawValue == status)
        }
        let statuses = [StatusOption(value: "", label: "any", selected: status.isEmpty)]
            + Connectivity.allCases.map { StatusOption(value: $0.rawValue, label: $0.rawValue, selected: $0.rawValue == status) }
        return Overview(
            counts: Counts(
                devices: overview.devices, online: overview.online, offline: overview.offline, unknown: overview.unknown,
                alerts: overview.alerts.count),
            alerts: overview.alerts.map { AlertRow(kind: $0.kind.rawValue, message: $0.message) }, rollouts: overview.rollouts.map(RolloutRow.init),
            staged: overview.stagedRollouts.map { rollout in
                StagedRow(
                    deployment: rollout.deployment, version: rollout.version, state: rollout.state.rawValue,
                    wave: "\(rollout.wave + 1) of \(rollout.waveSizes.count)",
                    updated: "\(rollout.updatedDevices.count) of \(rollout.devices.count)", reason: rollout.reason ?? rollout.waiting ?? "")
            },
            hasStaged: !overview.stagedRollouts.isEmpty,
            filter: Filter(tag: tag, statuses: statuses), devices: shown.map { DeviceRow($0, now: now) })
    }

    struct ModuleRow {
        var name: String, status: String, restarts: Int, lastExitCode: String, lastError: String
        var inferences: String, latency: String, label: String, shadow: String
    }

    struct Chart { var title: String; var maximum: String; var width: Int; var height: Int; var points: String }

    struct DevicePage {
        var summary: DeviceRow
        var runtimeVersion: String, uptime: String, cpu: String, memory: String, telemetryBacklog: String
        var desiredError: String?
        var modules: [ModuleRow]
        var charts: [Chart]
    }

    static func device(_ detail: DeviceHealthDetail, now: Date) -> DevicePage {
        let report = detail.report
        let modules = zip(report?.modules ?? [], detail.summary.running).map { module, label in
            ModuleRow(
                name: module.name, status: module.status.rawValue, restarts: module.restarts,
                lastExitCode: module.lastExitCode.map { "\($0)" } ?? "-", lastError: module.lastError ?? "-",
                inferences: module.inference.map { "\($0.count) (\($0.errors) errors)" } ?? "-",
                latency: module.inference.map { String(format: "%.1f / %.1f", $0.p50Ms, $0.p99Ms) } ?? "-",
                label: String(label.dropFirst(module.name.count + 2)),
                shadow: module.shadow.map { shadow in
                    "\(shadow.status.rawValue): \(shadow.samples) samples, agreement \(shadow.agreement.map { String(format: "%.3f", $0) } ?? "-"), p99 \(String(format: "%.1f", shadow.p99Ms)) ms"
                } ?? "-")
        }
        let history = detail.history
        let charts = history.count < 2 ? [] : [
            chart("CPU %", history.map(\.cpuPercent)),
            chart("telemetry buffered", history.map { Double($0.telemetryBuffered) }),
            chart("inference p99 ms", history.map { $0.p99Ms ?? 0 }),
        ]
        return DevicePage(
            summary: DeviceRow(detail.summary, now: now), runtimeVersion: report?.runtimeVersion ?? "-",
            uptime: report.map { HealthDerivation.duration(TimeInterval($0.uptimeSeconds)) } ?? "-",
            cpu: report.map { String(format: "%.0f%%", $0.system.cpuPercent) } ?? "-",
            memory: report.map { "\($0.system.memUsedBytes / 1_048_576) / \($0.system.memTotalBytes / 1_048_576) MiB" } ?? "-",
            telemetryBacklog: report.map { "\($0.telemetry.buffered)" } ?? "-",
            desiredError: report.flatMap { report in
                report.desired.error.map { "revision \(report.desired.revision) \(report.desired.status.rawValue): \($0)" }
            },
            modules: modules, charts: charts)
    }

    /// A polyline of `values`, oldest left, scaled to the box.
    static func chart(_ title: String, _ values: [Double], width: Int = 260, height: Int = 60) -> Chart {
        let maximum = max(values.max() ?? 0, 1)
        let step = Double(width - 4) / Double(max(values.count - 1, 1))
        let points = values.enumerated().map { index, value in
            String(format: "%.1f,%.1f", 2 + Double(index) * step, Double(height - 2) - value / maximum * Double(height - 4))
        }
        return Chart(
            title: title, maximum: String(format: "%.1f", values.max() ?? 0), width: width, height: height,
            points: points.joined(separator: " "))
    }

    struct RolloutEntryRow { var deviceId: String, state: String, revision: String, running: String, error: String }

    struct DeploymentPage {
        var name: String, target: String, priority: Int, modules: [String]
        var targeted: Int, applied: Int, pending: Int, failed: Int, rolledBack: Int, moduleNotRunning: Int
        var segments: [Segment]
        var devices: [RolloutEntryRow]
        var version: Int
        var hasRollout: Bool
    }

    static func deployment(_ deployment: ResolvedDeployment, rollout: DeploymentRollout, staged: Rollout?) -> DeploymentPage {
        let row = RolloutRow(rollout)
        return DeploymentPage(
            name: deployment.name, target: deployment.target, priority: deployment.priority,
            modules: deployment.modules.map { "\($0.name): \($0.label)" }, targeted: row.targeted, applied: row.applied,
            pending: row.pending, failed: row.failed, rolledBack: row.rolledBack, moduleNotRunning: row.moduleNotRunning,
            segments: row.segments,
            devices: rollout.devices.map { entry in
                RolloutEntryRow(
                    deviceId: entry.deviceId, state: entry.state.rawValue,
                    revision: "\(entry.reportedRevision.map { "\($0)" } ?? "-") / \(entry.desiredRevision.map { "\($0)" } ?? "-")",
                    running: entry.running.joined(separator: ", "), error: entry.error ?? "")
            },
            version: staged?.version ?? deployment.version, hasRollout: staged != nil)
    }

    struct CountCard { var state: String; var count: Int }
    struct CriterionRow { var name: String, value: String, threshold: String, ok: String, okClass: String, detail: String }
    struct RolloutDeviceRow { var deviceId: String, wave: Int, state: String, modules: String, error: String }

    struct RolloutPage {
        var deployment: String, version: Int, previous: String, state: String, wave: String, updated: String
        var reason: String?, waiting: String?
        var counts: [CountCard]
        var criteria: [CriterionRow]
        var shadow: String?
        var devices: [RolloutDeviceRow]
        var events: [String]
    }

    static func rollout(_ status: RolloutStatus, now: Date) -> RolloutPage {
        RolloutPage(
            deployment: status.deployment, version: status.version, previous: status.previousVersion.map { "\($0)" } ?? "none",
            state: status.state.rawValue, wave: "\(status.wave) of \(status.waves)", updated: "\(status.updated) of \(status.targeted)",
            reason: status.reason, waiting: status.waiting,
            counts: RolloutDeviceState.allCases.compactMap { state in
                let count = status.devices[state.rawValue] ?? 0
                return count > 0 ? CountCard(state: state.rawValue, count: count) : nil
            },
            criteria: status.criteria.map { criterion in
                CriterionRow(
                    name: criterion.name, value: criterion.value.map { String(format: "%.4g", $0) } ?? "-",
                    threshold: criterion.threshold, ok: criterion.ok ? "yes" : "no", okClass: criterion.ok ? "ok-yes" : "ok-no",
                    detail: criterion.detail)
            },
            shadow: status.shadow.map { shadow in
                "\(shadow.samples) samples, agreement \(shadow.agreement.map { String(format: "%.4f", $0) } ?? "-"), \(shadow.errors) errors, promoted on \(shadow.promotedDevices) device(s)"
            },
            devices: status.perDevice.map {
                RolloutDeviceRow(deviceId: $0.deviceId, wave: $0.wave, state: $0.state.rawValue, modules: $0.modules.joined(separator: ", "), error: $0.error ?? "")
            },
            events: status.events.reversed().map { "\(ago($0.at, now: now)): \($0.message)" })
    }

    static func splitTag(_ tag: String) -> (String, String) {
        guard let equals = tag.firstIndex(of: "=") else { return (tag.trimmingCharacters(in: .whitespaces), "") }
        return (String(tag[..<equals]).trimmingCharacters(in: .whitespaces), String(tag[tag.index(after: equals)...]).trimmingCharacters(in: .whitespaces))
    }

    static func ago(_ date: Date, now: Date) -> String {
        let seconds = max(0, now.timeIntervalSince(date))
        return "\(HealthDerivation.duration(seconds)) ago"
    }
}
