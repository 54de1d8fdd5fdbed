import Foundation

/// The fleet's state in the Prometheus text exposition format, for `GET /metrics`.
enum MetricsText {
    static func render(overview: FleetOverview, rejections: [RejectionCount], counters: IngestCounters?) -> String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for sample in samples {
                lines.append(sample.labels.isEmpty ? "\(name) \(sample.value)" : "\(name){\(sample.labels)} \(sample.value)")
            }
        }
        metric("fleethub_devices", "gauge", "Registered devices by connectivity.", [
            ("connectivity=\"online\"", "\(overview.online)"), ("connectivity=\"offline\"", "\(overview.offline)"),
            ("connectivity=\"unknown\"", "\(overview.unknown)"),
        ])
        metric("fleethub_devices_online", "gauge", "Devices the hub currently hears from.", [("", "\(overview.online)")])
        metric("fleethub_deployment_devices", "gauge", "Targeted devices per deployment and rollout state.",
            overview.rollouts.flatMap { rollout in
                RolloutState.allCases.map { state in
                    ("deployment=\"\(escape(rollout.deployment))\",state=\"\(state.rawValue)\"", "\(rollout.count(state))")
                }
            })
        metric("fleethub_alerts", "gauge", "Active alerts.", [("", "\(overview.alerts.count)")])
        metric("fleethub_health_messages_rejected_total", "counter",
            "Device messages refused (malformed, oversized, unknown device, device id mismatch), since the workspace was created.",
            rejections.map { ("reason=\"\(escape($0.reason))\"", "\($0.count)") })
        if let counters {
            metric("fleethub_reports_ingested_total", "counter", "Health reports accepted since this hub started.",
                [("", "\(counters.reports)")])
            metric("fleethub_connection_states_ingested_total", "counter", "Connection states accepted since this hub started.",
                [("", "\(counters.connectionStates)")])
            metric("fleethub_report_ingest_rate", "gauge", "Health reports accepted per second over the last 10 seconds.",
                [("", String(format: "%.2f", counters.reportsPerSecond))])
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
