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
        if let refusal = status.lastRefusal { lines.append("last refused message: \(refusal)") }
        lines.append("")
        lines.append(["MODULE", "STATUS", "RESTARTS", "EXIT", "PID", "UPTIME", "BUNDLE"].joined(separator: "\t"))
        for module in status.modules {
            let uptime = running && module.pid != nil ? module.startedAt.map { "\(Int(now.timeIntervalSince($0)))s" } ?? "-" : "-"
            lines.append([
                module.name, running ? module.status.rawValue : "was \(module.status.rawValue)", "\(module.restarts)", module.lastExitCode.map { "\($0)" } ?? "-",
                module.pid.map { "\($0)" } ?? "-", uptime, String(module.bundleDigest.hex.prefix(12)),
            ].joined(separator: "\t"))
            if let error = module.lastError { lines.append("\t\(error)") }
        }
        return lines.joined(separator: "\n")
    }
}
