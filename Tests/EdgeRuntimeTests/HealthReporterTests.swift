@testable import EdgeRuntime
import FleetCore
import Testing

/// The parsers behind the report's system numbers, on fixed `/proc` text.
struct HealthReporterSystemTests {
    @Test func cpuUseIsTheBusyShareOfTheTicksBetweenTwoSamples() throws {
        let earlier = try #require(CPUTimes(procStat: "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n"))
        let later = try #require(CPUTimes(procStat: "cpu  150 0 150 750 150 0 0 0 0 0\n"))
        #expect(later.busyPercent(since: earlier) == 50)
        #expect(earlier.busyPercent(since: earlier) == 0)
        // A counter that went backwards (another boot) is no basis for a number.
        #expect(earlier.busyPercent(since: later) == 0)
        #expect(CPUTimes(procStat: "intr 1 2 3\n") == nil)
    }

    @Test func memoryUsedIsTotalMinusAvailable() throws {
        let memory = try #require(MemoryInfo(procMeminfo: "MemTotal:        2048 kB\nMemFree:   100 kB\nMemAvailable:    512 kB\n"))
        #expect(memory == MemoryInfo(procMeminfo: "MemAvailable: 512 kB\nMemTotal: 2048 kB\n"))
        #expect(memory.total == 2048 * 1024 && memory.available == 512 * 1024)
        #expect(MemoryInfo(procMeminfo: "SwapTotal: 1 kB\n") == nil)
    }

    @Test func thisMachineHasPlausibleNumbers() {
        var sampler = SystemSampler(diskPath: "/tmp")
        let system = sampler.sample()
        #expect(system.memTotalBytes > 0)
        #expect(system.memUsedBytes > 0 && system.memUsedBytes < system.memTotalBytes)
        #expect(system.diskFreeBytes > 0)
        #expect((0...100).contains(system.cpuPercent))
    }
}
