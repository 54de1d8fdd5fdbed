import FleetCore
import Foundation

/// `edge-runtime status` as a human reads it.
public struct StatusText: Sendable {
    public let status: RuntimeStatus
    public let now: Date

    public init(_ status: RuntimeStatus, now: Date = Date()) {
        self.status = status
        self.now = now
    }

    public func render() -> String {
        let running = status.daemonPid != nil
        var lines = [
            status.daemonPid.map { "edge-runtime running (pid \($0))" }
                ?? "edge-runtime not running: the modules below are as it last recorded them",
            "desired revision \(status.acceptedRevision): \(status.desired.status.rawValue)"
                + (status.desired.error.map { " (\($0))" } ?? ""),
            "applied revision \(status.appliedRevision)",
        ]
        if let progress = status.desired.progress, running { lines.append("step: \(progress.text)") }
        if let retry = status.desired.retry { lines.append(Self.line(retry, now: now, running: running)) }
        if let refusal = status.lastRefusal { lines.append("last refused message: \(refusal)") }
        if let telemetry = status.telemetry {
            let refused = (telemetry.refused ?? [:]).sorted { $0.key < $1.key }.map { ", refused \($0.key) \($0.value)" }.joined()
            lines.append(
                "telemetry: \(telemetry.buffered) buffered, \(telemetry.uploaded) uploaded, \(telemetry.dropped) dropped\(refused)")
        }
        lines.append("")
        lines.append(["MODULE", "STATUS", "RESTARTS", "EXIT", "PID", "UPTIME", "BUNDLE"].joined(separator: "\t"))
        for module in status.modules {
            let uptime = running && module.pid != nil ? module.startedAt.map { "\(Int(now.timeIntervalSince($0)))s" } ?? "-" : "-"
            lines.append([
                module.name, running ? module.status.rawValue : "was \(module.status.rawValue)", "\(module.restarts)", module.lastExitCode.map { "\($0)" } ?? "-",
                module.pid.map { "\($0)" } ?? "-", uptime, String(module.bundleDigest.hex.prefix(12)),
            ].joined(separator: "\t"))
            if let error = module.lastError { lines.append("\t\(error)") }
            if let shadow = module.shadow { lines.append("\t" + Self.line(shadow)) }
        }
        return lines.joined(separator: "\n")
    }

    /// E.g. `attempt 3 failed at verifying iris (sha256:3f2a9c01b7d4); next attempt in 38 s`.
    static func line(_ retry: ApplyRetry, now: Date, running: Bool) -> String {
        let wait = Int(retry.nextAttemptAt.timeIntervalSince(now).rounded(.up))
        let next = !running ? "no attempt until edge-runtime runs" : wait > 0 ? "next attempt in \(wait) s" : "retrying now"
        return "attempt \(retry.attempt) failed at \(retry.step); \(next)"
    }

    /// E.g. `shadow 3f2a9c01b7d4 running: 120 samples, agreement 0.700, 0 errors, 4 skipped,
    /// p50 1.9 ms, p99 6.2 ms`; the numbers are those the daemon last recorded (its start
    /// or stop): the live ones are in `GET /v1/modules/{name}/health` and the health report.
    static func line(_ shadow: ShadowHealth) -> String {
        var text = "shadow \(shadow.bundleDigest.hex.prefix(12)) \(shadow.status.rawValue): \(shadow.samples) samples"
        if let agreement = shadow.agreement { text += String(format: ", agreement %.3f", agreement) }
        text += ", \(shadow.errors) errors, \(shadow.skipped) skipped"
        if shadow.samples > 0 { text += String(format: ", p50 %.1f ms, p99 %.1f ms", shadow.p50Ms, shadow.p99Ms) }
        if let error = shadow.lastError { text += " (\(error))" }
        return text
    }
}
