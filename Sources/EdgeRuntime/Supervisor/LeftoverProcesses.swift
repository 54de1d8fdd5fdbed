import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A process group the runtime started and recorded in the state store (a module's, or
/// a pip install's), so that a restarted runtime can recognise what its predecessor left.
public struct TrackedProcess: Codable, Equatable, Sendable {
    /// What it is, for the log: the module's name, or the command.
    public var name: String
    /// The group (the pid of its first process).
    public var processGroup: Int32
    /// The kernel's start time of the group's first process (clock ticks since boot).
    public var startTicks: UInt64

    public init(name: String, processGroup: Int32, startTicks: UInt64) {
        self.name = name
        self.processGroup = processGroup
        self.startTicks = startTicks
    }

    /// The group `pid` leads, as the process table shows it now; nil once it is gone.
    public static func group(of pid: Int32, name: String) -> TrackedProcess? {
        ProcessTable.entry(pid: pid).map { TrackedProcess(name: name, processGroup: pid, startTicks: $0.startTicks) }
    }
}

extension ModuleStatus {
    /// The module's process group and each of its scoring workers' groups, as recorded.
    var trackedProcesses: [TrackedProcess] {
        var tracked = (scoringWorkers ?? []).map {
            TrackedProcess(name: "\(name) scoring worker", processGroup: $0.pid, startTicks: $0.startTicks)
        }
        if let processGroup, let processStartTicks {
            tracked.append(TrackedProcess(name: name, processGroup: processGroup, startTicks: processStartTicks))
        }
        return tracked
    }
}

/// Finds processes a previous runtime left behind (it was killed with SIGKILL or
/// crashed) from the process groups recorded in the state store (modules, their scoring
/// workers, pip installs),
/// and ends them, so a restarted runtime never runs a module twice nor leaves a pip behind.
enum LeftoverProcesses {
    /// Ends every process in the recorded groups that is not older than the recorded
    /// group leader (older ones reuse a pid by chance and are left alone). SIGTERM first,
    /// SIGKILL after `grace`. Returns how many processes were found.
    @discardableResult
    static func end(_ recorded: [TrackedProcess], grace: Duration, logger: Logger) async -> Int {
        var found: [ProcessTable.Entry] = []
        for process in recorded {
            let members = ProcessTable.members(ofGroup: process.processGroup).filter { $0.startTicks >= process.startTicks }
            if !members.isEmpty {
                logger.warning(
                    "ending processes left by a previous runtime",
                    metadata: ["name": "\(process.name)", "group": "\(process.processGroup)", "count": "\(members.count)"])
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
