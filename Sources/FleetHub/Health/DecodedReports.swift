import FleetCore
import Foundation
import Synchronization

/// The health reports already decoded, by device and the time the hub stored them, so
/// a reader that runs every few seconds (the dashboard at 10,000 devices) decodes only
/// the reports that changed since its last read instead of every device's.
public final class DecodedReports: Sendable {
    private struct Entry {
        var reportedAt: Date
        var report: HealthReport
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// The report of `deviceId` stored at `reportedAt`, if decoded before.
    func report(of deviceId: String, reportedAt: Date) -> HealthReport? {
        entries.withLock { entries in
            guard let entry = entries[deviceId], entry.reportedAt == reportedAt else { return nil }
            return entry.report
        }
    }

    func remember(_ report: HealthReport, of deviceId: String, reportedAt: Date) {
        entries.withLock { $0[deviceId] = Entry(reportedAt: reportedAt, report: report) }
    }
}
