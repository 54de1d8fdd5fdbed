import FleetCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The runtime's periodic `metric` record (module `edge-runtime`): the runtime
/// process's CPU share since the last record and its resident memory, and per module
/// its status, restarts and inference counters.
struct RuntimeMetrics {
    static let module = "edge-runtime"

    private var lastCPUSeconds = Self.cpuSeconds()
    private var lastSample = ContinuousClock.now

    /// The record for now; `statuses` from the supervisor, `modules` the local API's table.
    mutating func entry(statuses: [ModuleStatus], modules: LocalModules) -> TelemetryEntry {
        let cpu = Self.cpuSeconds()
        let now = ContinuousClock.now
        let elapsed = now - lastSample
        let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let cpuPercent = wall > 0 ? (cpu - lastCPUSeconds) / wall * 100 : 0
        lastCPUSeconds = cpu
        lastSample = now
        let hosts = Dictionary(modules.all.compactMap { entry in entry.scoring.map { (entry.name, $0) } }) { first, _ in first }
        var perModule: [String: JSONValue] = [:]
        for status in statuses {
            var fields: [String: JSONValue] = [
                "status": .string(status.status.rawValue), "restarts": .number(Double(status.restarts)),
            ]
            if let host = hosts[status.name] {
                let stats = host.inferenceStats
                fields["inferenceCount"] = .number(Double(stats.count))
                fields["inferenceErrors"] = .number(Double(stats.errors))
                fields["workerRestarts"] = .number(Double(host.restartCount))
            }
            perModule[status.name] = .object(fields)
        }
        return TelemetryEntry(
            module: Self.module, kind: .metric,
            data: .object([
                "cpuPercent": .number((cpuPercent * 10).rounded() / 10),
                "memoryBytes": .number(Double(Self.residentBytes())),
                "modules": .object(perModule),
            ]))
    }

    /// User plus system CPU time of this process.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// Resident set size from `/proc/self/statm` (0 where it does not exist).
    private static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }
}
