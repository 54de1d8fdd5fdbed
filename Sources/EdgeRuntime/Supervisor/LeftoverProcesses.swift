import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Finds module processes and scoring workers a previous runtime left behind (it was
/// killed with SIGKILL or crashed) from the pids and process groups recorded in the
/// state store, and ends them, so a restarted runtime never runs a module twice.
enum LeftoverProcesses {
    /// Ends every process in the recorded groups (a module's, each scoring worker's) that
    /// is not older than the recorded group leader (older ones reuse a pid by chance and
    /// are left alone). SIGTERM first, SIGKILL after `grace`. Returns how many processes
    /// were found.
    @discardableResult
    static func end(_ statuses: [ModuleStatus], grace: Duration, logger: Logger) async -> Int {
        var found: [ProcessTable.Entry] = []
        for status in statuses {
            var groups = (status.scoringWorkers ?? []).map { (group: $0.pid, ticks: $0.startTicks) }
            if let group = status.processGroup, let ticks = status.processStartTicks { groups.append((group, ticks)) }
            let members = groups.flatMap { group, ticks in
                ProcessTable.members(ofGroup: group).filter { $0.startTicks >= ticks }
            }
            if !members.isEmpty {
                logger.warning(
                    "ending processes left by a previous runtime",
                    metadata: [
                        "module": "\(status.name)", "groups": "\(groups.map { "\($0.group)" }.joined(separator: ","))",
                        "count": "\(members.count)",
                    ])
            }
            found += members
        }
        guard !found.isEmpty else { return 0 }
        for member in found { kill(member.pid, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline && found.contains(where: isAlive) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for member in found where isAlive(member) { kill(member.pid, SIGKILL) }
        return found.count
    }

    private static func isAlive(_ member: ProcessTable.Entry) -> Bool {
        guard let now = ProcessTable.entry(pid: member.pid) else { return false }
        return now.startTicks == member.startTicks && !now.isZombie
    }
}
