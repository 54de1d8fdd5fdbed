import FleetCore
import Foundation
import Mustache

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
        /// When the hub last heard from the device, ISO 8601, for the page's script to show as "12s ago".
        var lastSeenAt: String
        var problem: String
        var tags: [String]

        init(_ summary: DeviceHealthSummary, now: Date) {
            id = summary.id
            connectivity = summary.connectivity.rawValue
            let reported = summary.reportedRevision.map { "\($0)" } ?? "-"
            let status = summary.revisionStatus.map { $0 == .applied ? "" : " (\($0.rawValue))" } ?? ""
            revision = "\(reported)\(status) / \(summary.desiredRevision.map { "\($0)" } ?? "-")"
            modules = "\(summary.modulesRunning)/\(summary.modulesTotal)"
            restarts = summary.restarts
            // A time, not "12s ago": the part stays the same while the device says nothing new.
            lastSeen = summary.lastSeen.map { DashboardViews.clock($0, now: now) } ?? "never"
            lastSeenAt = summary.lastSeen.map { $0.formatted(.iso8601) } ?? ""
            problem = DashboardViews.problem(of: summary)?.text ?? ""
            tags = summary.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        }
    }

    /// What is wrong with a device, most urgent first (lower rank); nil when nothing is.
    /// How many ranks `problem(of:)` gives, 0 the worst.
    static let problemRanks = 5

    static func problem(of summary: DeviceHealthSummary) -> (rank: Int, text: String)? {
        if summary.revisionStatus == .failed { return (0, "revision failed") }
        if summary.revisionStatus == .rolledBack { return (1, "rolled back") }
        if summary.modulesRunning < summary.modulesTotal { return (2, "module not running") }
        if summary.connectivity == .offline { return (3, "offline") }
        if summary.connectivity == .unknown { return (4, "never seen") }
        return nil
    }

    struct StatusOption { var value: String; var label: String; var selected: Bool }

    /// The device table's search, from the query string: `q` (part of the id), `tag`
    /// (`key=value` or `key`), `status` (`problem` or a connectivity) and `page` (from 1).
    struct DeviceQuery {
        var text = ""
        var tag = ""
        var status = ""
        var page = 1

        init(_ parameters: some Collection<(key: Substring, value: Substring)>) {
            for (key, value) in parameters {
                let value = String(value).removingPercentEncoding ?? String(value)
                switch key {
                case "q": text = value.trimmingCharacters(in: .whitespaces)
                case "tag": tag = value
                case "status": status = value
                case "page": page = max(1, Int(value) ?? 1)
                default: break
                }
            }
        }

        init(text: String = "", tag: String = "", status: String = "", page: Int = 1) {
            self.text = text
            self.tag = tag
            self.status = status
            self.page = page
        }

        /// Whether `device` is found by this search, given its text lowercased and its tag
        /// filter split once for a pass over the whole fleet (case-insensitive without
        /// Foundation's per-call locale work).
        func matches(_ device: DeviceHealthSummary, text: String, tag: (key: String, value: String)) -> Bool {
            let (key, value) = tag
            return (text.isEmpty || device.id.lowercased().contains(text))
                && (key.isEmpty || device.tags[key] == value || (value.isEmpty && device.tags[key] != nil))
                && (status.isEmpty || (status == "problem" ? problem(of: device) != nil : device.connectivity.rawValue == status))
        }

        /// The query string of page `page` of this search.
        func link(page: Int) -> String {
            var items = [URLQueryItem]()
            if !text.isEmpty { items.append(URLQueryItem(name: "q", value: text)) }
            if !tag.isEmpty { items.append(URLQueryItem(name: "tag", value: tag)) }
            if !status.isEmpty { items.append(URLQueryItem(name: "status", value: status)) }
            items.append(URLQueryItem(name: "page", value: "\(page)"))
            var components = URLComponents()
            components.queryItems = items
            return components.percentEncodedQuery.map { "?\($0)" } ?? ""
        }
    }

    /// Where a paged table is: "101–200 of 10000", with links to the pages beside it.
    struct Pager {
        var shown: String
        var previous: String?
        var next: String?

        /// Page `page` (from 1, clamped to the last) of `count` rows, `size` a page; `link` makes a page's query string.
        static func paging<Row>(_ rows: [Row], page: Int, size: Int = pageSize, link: (Int) -> String) -> ([Row], Pager) {
            let pages = max(1, (rows.count + size - 1) / size)
            let page = min(page, pages)
            let slice = Array(rows.dropFirst((page - 1) * size).prefix(size))
            let first = rows.isEmpty ? 0 : (page - 1) * size + 1
            return (slice, Pager(
                shown: "\(first)–\(first + max(slice.count, 1) - 1) of \(rows.count)",
                previous: page > 1 ? link(page - 1) : nil, next: page < pages ? link(page + 1) : nil))
        }
    }

    /// Rows of a device table per page.
    static let pageSize = 100

    /// Alerts the overview lists; the rest are counted ("and 950 more").
    static let alertsShown = 20

    struct Filter {
        var text: String
        var tag: String
        var statuses: [StatusOption]
    }

    struct Counts { var devices: Int, online: Int, offline: Int, unknown: Int, alerts: Int, problems: Int }

    struct AlertRow { var kind: String; var message: String }

    struct StagedRow { var deployment: String, version: Int, state: String, wave: String, updated: String, reason: String }

    struct Overview {
        var counts: Counts
        var alerts: [AlertRow]
        var moreAlerts: Int?
        var rollouts: [RolloutRow]
        var staged: [StagedRow]
        /// Stored, not computed: the templates see only stored properties.
        var hasStaged: Bool
        var filter: Filter
        var devices: [DeviceRow]
        var matching: Int
        var pager: Pager
    }

    /// The overview: problem devices first, then the rest by id, filtered by `query` and paged.
    static func overview(_ overview: FleetOverview, devices: [DeviceHealthSummary], query: DeviceQuery, now: Date) -> Overview {
        // Problems first, worst first, each rank in id order: one pass, as `devices` come in
        // id order, over positions rather than copies of 10,000 summaries.
        var byRank = [[Int]](repeating: [], count: problemRanks + 1)
        var problems = 0
        let (text, tag) = (query.text.lowercased(), splitTag(query.tag))
        for index in devices.indices {
            let rank = problem(of: devices[index])?.rank
            if rank != nil { problems += 1 }
            if query.matches(devices[index], text: text, tag: tag) { byRank[rank ?? problemRanks].append(index) }
        }
        let ranked = byRank.flatMap { $0 }
        let (shown, pager) = Pager.paging(ranked, page: query.page, link: query.link(page:))
        let statuses = [StatusOption(value: "", label: "any", selected: query.status.isEmpty),
                        StatusOption(value: "problem", label: "problem", selected: query.status == "problem")]
            + Connectivity.allCases.map { StatusOption(value: $0.rawValue, label: $0.rawValue, selected: $0.rawValue == query.status) }
        return Overview(
            counts: Counts(
                devices: overview.devices, online: overview.online, offline: overview.offline, unknown: overview.unknown,
                alerts: overview.alerts.count, problems: problems),
            alerts: overview.alerts.prefix(alertsShown).map { AlertRow(kind: $0.kind.rawValue, message: $0.message) },
            moreAlerts: overview.alerts.count > alertsShown ? overview.alerts.count - alertsShown : nil,
            rollouts: overview.rollouts.map(RolloutRow.init),
            staged: overview.stagedRollouts.map { rollout in
                StagedRow(
                    deployment: rollout.deployment, version: rollout.version, state: rollout.state.rawValue,
                    wave: "\(rollout.wave + 1) of \(rollout.waveSizes.count)",
                    updated: "\(rollout.updatedDevices.count) of \(rollout.devices.count)", reason: rollout.reason ?? rollout.waiting ?? "")
            },
            hasStaged: !overview.stagedRollouts.isEmpty,
            filter: Filter(text: query.text, tag: query.tag, statuses: statuses),
            devices: shown.map { DeviceRow(devices[$0], now: now) }, matching: ranked.count, pager: pager)
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
        var drift: [DriftRow] = []
        var hasDrift = false
    }

    /// One input feature's PSI on the device; `drifted` above the alert threshold.
    struct DriftRow {
        var module: String, feature: String, psi: String, count: Int, windowEnd: String, drifted: Bool
    }

    static func device(_ detail: DeviceHealthDetail, now: Date, driftAlertPSI: Double = HealthPolicy().driftAlertPSI) -> DevicePage {
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
            modules: modules, charts: charts,
            drift: detail.drift.map { score in
                DriftRow(
                    module: score.module, feature: score.feature, psi: String(format: "%.4f", score.psi), count: score.count,
                    windowEnd: clock(score.windowEnd, now: now), drifted: score.psi > driftAlertPSI)
            }, hasDrift: !detail.drift.isEmpty)
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

    struct VersionRow { var version: Int, created: String, origin: String, modules: [String], manifest: String, current: Bool }

    struct DeploymentPage {
        var name: String, target: String, priority: Int
        var modules: [StudioViews.Link]
        var targeted: Int, applied: Int, pending: Int, failed: Int, rolledBack: Int, moduleNotRunning: Int
        var segments: [Segment]
        var devices: [RolloutEntryRow]
        var pager: Pager
        var version: Int
        var hasRollout: Bool
        var versions: [VersionRow]
    }

    /// The deployment's rollout (devices not yet applied first, paged), its modules and every version's manifest.
    static func deployment(
        _ deployment: ResolvedDeployment, rollout: DeploymentRollout, staged: Rollout?, history: [DeploymentVersion], page: Int
    ) -> DeploymentPage {
        let row = RolloutRow(rollout)
        let order = Dictionary(uniqueKeysWithValues: [RolloutState.failed, .rolledBack, .moduleNotRunning, .pending, .applied].enumerated().map { ($1, $0) })
        let entries = rollout.devices.sorted { (order[$0.state] ?? 0, $0.deviceId) < (order[$1.state] ?? 0, $1.deviceId) }
        let (shown, pager) = Pager.paging(entries, page: page) { "?page=\($0)" }
        return DeploymentPage(
            name: deployment.name, target: deployment.target, priority: deployment.priority,
            modules: deployment.modules.map { module in
                StudioViews.Link(text: "\(module.name): \(module.label)", href: "/modules/\((try? VersionedName(parsing: module.bundle).name) ?? module.bundle)")
            },
            targeted: row.targeted, applied: row.applied,
            pending: row.pending, failed: row.failed, rolledBack: row.rolledBack, moduleNotRunning: row.moduleNotRunning,
            segments: row.segments,
            devices: shown.map { entry in
                RolloutEntryRow(
                    deviceId: entry.deviceId, state: entry.state.rawValue,
                    revision: "\(entry.reportedRevision.map { "\($0)" } ?? "-") / \(entry.desiredRevision.map { "\($0)" } ?? "-")",
                    running: entry.running.joined(separator: ", "), error: entry.error ?? "")
            },
            pager: pager, version: staged?.version ?? deployment.version, hasRollout: staged != nil,
            versions: history.reversed().map { version in
                VersionRow(
                    version: version.version, created: clock(version.createdAt, now: .distantFuture), origin: version.origin,
                    modules: version.modules, manifest: version.manifest.isEmpty ? "(not kept for this version)" : version.manifest,
                    current: version.version == deployment.version)
            })
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

    /// `14:03:07 UTC` when `date` is on the day of `now`, else `2026-11-30 14:03 UTC`.
    static func clock(_ date: Date, now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        if calendar.isDate(date, inSameDayAs: now) {
            return String(format: "%02d:%02d:%02d UTC", c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
        }
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    static func ago(_ date: Date, now: Date) -> String {
        let seconds = max(0, now.timeIntervalSince(date))
        return "\(HealthDerivation.duration(seconds)) ago"
    }
}

/// The overview's device rows by name rather than through `Mirror`, which was most of
/// what rendering 100 rows cost; a field not listed here still renders, by reflection.
extension DashboardViews.DeviceRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "id": id
        case "connectivity": connectivity
        case "revision": revision
        case "modules": modules
        case "restarts": restarts
        case "lastSeen": lastSeen
        case "lastSeenAt": lastSeenAt
        case "problem": problem
        case "tags": tags
        default: Mirror(reflecting: self).descendant(name)
        }
    }
}
