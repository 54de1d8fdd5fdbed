import FleetCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads the device's CPU, memory and disk for the health report from Linux's
/// `/proc/stat`, `/proc/meminfo` and `statvfs` of the data dir. CPU use is the busy
/// share of all CPUs between two samples, so the sampler keeps the previous one.
struct SystemSampler {
    private let diskPath: String
    private var previousCPU: CPUTimes?

    init(diskPath: String) {
        self.diskPath = diskPath
        previousCPU = CPUTimes.read()
    }

    /// The system right now; a number that cannot be read is 0.
    mutating func sample() -> SystemHealth {
        let cpu = CPUTimes.read()
        let cpuPercent = cpu.flatMap { now in previousCPU.map { now.busyPercent(since: $0) } } ?? 0
        if let cpu { previousCPU = cpu }
        let memory = MemoryInfo.read()
        return SystemHealth(
            cpuPercent: cpuPercent, memUsedBytes: memory.map { $0.total - $0.available } ?? 0,
            memTotalBytes: memory?.total ?? 0, diskFreeBytes: Self.freeBytes(at: diskPath) ?? 0)
    }

    /// Bytes an unprivileged process can still write on the file system holding `path`.
    static func freeBytes(at path: String) -> Int64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks since boot.
struct CPUTimes: Equatable {
    var busy: UInt64
    var idle: UInt64

    /// Parses the first line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal …`.
    init?(procStat text: String) {
        guard let line = text.split(separator: "\n", maxSplits: 1).first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 4 else { return nil }
        // guest time is already counted in user and nice.
        let counted = fields.prefix(8)
        idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        busy = counted.reduce(0, +) - idle
    }

    static func read() -> CPUTimes? {
        (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)).flatMap(CPUTimes.init(procStat:))
    }

    /// The busy share of the ticks elapsed since `earlier`, 0…100.
    func busyPercent(since earlier: CPUTimes) -> Double {
        let busyTicks = busy &- earlier.busy
        let total = busyTicks &+ (idle &- earlier.idle)
        guard total > 0, busy >= earlier.busy, idle >= earlier.idle else { return 0 }
        return (Double(busyTicks) / Double(total) * 1000).rounded() / 10
    }
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes.
struct MemoryInfo: Equatable {
    var total: Int64
    var available: Int64

    init?(procMeminfo text: String) {
        var kilobytes: [Substring: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            if parts.count >= 2, let value = Int64(parts[1]) { kilobytes[parts[0]] = value }
        }
        guard let total = kilobytes["MemTotal"], let available = kilobytes["MemAvailable"] ?? kilobytes["MemFree"] else {
            return nil
        }
        self.total = total * 1024
        self.available = available * 1024
    }

    static func read() -> MemoryInfo? {
        (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)).flatMap(MemoryInfo.init(procMeminfo:))
    }
}
