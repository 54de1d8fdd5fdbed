import ArgumentParser
import FleetCore
import Foundation
import Synchronization

/// `fleet-simulator`: connects N simulated devices to a broker, each publishing
/// health reports at a chosen rate and recording when each desired-state revision
/// reaches it, then writes a JSON summary. The fleet benchmark
/// (`benchmarks/fleet/run.sh`) drives it against a real `fleethub serve`.
@main
struct FleetSimulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-simulator",
        abstract: "Simulate a fleet of devices on an MQTT broker: reports, last wills, desired-state fan-out timing.")

    @Option(help: "The broker, mqtt://HOST:PORT.") var broker = "mqtt://127.0.0.1:1883"
    @Option(help: "How many devices.") var devices = 100
    @Option(help: "Device ids are PREFIX plus a 5-digit number.") var prefix = "sim-"
    @Option(help: "The number of the first device, to split a fleet over several processes.") var firstIndex = 0
    @Option(help: "Seconds between two reports of one device.") var interval = 10.0
    @Option(help: "Seconds to run after every device connected.") var duration = 60.0
    @Option(help: "Devices connecting at the same time.") var connectConcurrency = 100
    @Option(help: "Verify desired states with this hub public key (base64).") var hubKey: String?
    @Option(help: "After this many seconds, the first device's module starts crash-looping; its report time is printed.")
    var changeAfter: Double?
    @Option(help: "Where to write the JSON summary (default: stdout).") var summary: String?
    @Flag(help: "Also write, per device, when each revision arrived and when the device first reported it.")
    var perDevice = false
    @Option(help: "Stop early (and write the summary) once this file exists.") var stopFile: String?

    /// libmosquitto's network thread waits with select(), which cannot watch a file
    /// descriptor above 1023; each client holds three. More devices need more processes
    /// (`--first-index`), as `benchmarks/fleet/bench.py` starts them.
    static let maximumDevicesPerProcess = 300

    func validate() throws {
        guard (1...Self.maximumDevicesPerProcess).contains(devices) else {
            throw ValidationError(
                "--devices must be 1...\(Self.maximumDevicesPerProcess): libmosquitto cannot watch file descriptors above 1023; run several simulators with --first-index for a larger fleet")
        }
    }

    func run() async throws {
        let address = try BrokerAddress(broker)
        let key = try hubKey.map { try HubPublicKey(base64: $0) }
        let fleet = try (firstIndex..<(firstIndex + devices)).map {
            try SimulatedDevice(id: "\(prefix)\(String(format: "%05d", $0))", broker: address, hubKey: key, reportInterval: Int(interval.rounded(.up)))
        }
        let connectStart = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, device) in fleet.enumerated() {
                if index >= connectConcurrency { try await group.next() }
                group.addTask { try await device.start() }
            }
            try await group.waitForAll()
        }
        let connectSeconds = Date().timeIntervalSince(connectStart)
        Self.say("connected \(devices) devices in \(String(format: "%.1f", connectSeconds)) s")

        let counts = ReportCounts()
        let start = ContinuousClock.now
        let end = start.advanced(by: .seconds(duration))
        let tick = Duration.milliseconds(100)
        let perTick = Double(devices) * 0.1 / interval
        var due = 0.0
        var next = 0
        var changed = changeAfter == nil
        while ContinuousClock.now < end, !(stopFile.map(FileManager.default.fileExists(atPath:)) ?? false) {
            if !changed, let changeAfter, ContinuousClock.now - start >= .seconds(changeAfter) {
                changed = true
                let device = fleet[0]
                device.startCrashLoop()
                try await device.report(revision: device.latestRevision)
                Self.say("change-published \(String(format: "%.3f", Date().timeIntervalSince1970)) \(device.id)")
            }
            due += perTick
            while due >= 1 {
                due -= 1
                let device = fleet[next % fleet.count]
                next += 1
                Task {
                    do {
                        try await device.report(revision: device.latestRevision)
                        counts.published.add(1, ordering: .relaxed)
                    } catch {
                        counts.failed.add(1, ordering: .relaxed)
                    }
                }
            }
            try await Task.sleep(for: tick)
        }
        let result = Summary(
            devices: devices, connectSeconds: connectSeconds, reportsPublished: counts.published.load(ordering: .relaxed),
            reportFailures: counts.failed.load(ordering: .relaxed), revisions: Summary.revisions(of: fleet),
            perDevice: perDevice ? Summary.timings(of: fleet) : nil)
        for device in fleet { device.stop() }
        let data = try FleetJSON.prettyEncoder().encode(result)
        if let summary {
            try data.write(to: URL(fileURLWithPath: summary))
        } else {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    static func say(_ line: String) {
        FileHandle.standardError.write(Data("\(line)\n".utf8))
    }
}

/// Reports published and failed, counted from many tasks at once.
final class ReportCounts: Sendable {
    let published = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
}

/// What the simulator measured, written as JSON at the end of a run.
struct Summary: Codable {
    /// When each desired-state revision reached the fleet: how many devices got it,
    /// and the first and last arrival (seconds since 1970).
    struct Revision: Codable {
        var devices: Int
        var firstArrival: Double
        var lastArrival: Double
    }

    var devices: Int
    var connectSeconds: Double
    var reportsPublished: Int
    var reportFailures: Int
    var revisions: [String: Revision]
    /// Per device and revision: when it arrived and when the device first reported it
    /// (seconds since 1970), with `--per-device`.
    var perDevice: [String: [String: Timing]]?

    struct Timing: Codable {
        var arrived: Double
        var reported: Double?
    }

    static func timings(of fleet: [SimulatedDevice]) -> [String: [String: Timing]] {
        Dictionary(uniqueKeysWithValues: fleet.map { device in
            let reports = device.firstReports
            return (device.id, Dictionary(uniqueKeysWithValues: device.arrivals.map { revision, at in
                ("\(revision)", Timing(arrived: at.timeIntervalSince1970, reported: reports[revision]?.timeIntervalSince1970))
            }))
        })
    }

    static func revisions(of fleet: [SimulatedDevice]) -> [String: Revision] {
        var result: [String: Revision] = [:]
        for device in fleet {
            for (revision, at) in device.arrivals {
                let time = at.timeIntervalSince1970
                var entry = result["\(revision)"] ?? Revision(devices: 0, firstArrival: time, lastArrival: time)
                entry.devices += 1
                entry.firstArrival = min(entry.firstArrival, time)
                entry.lastArrival = max(entry.lastArrival, time)
                result["\(revision)"] = entry
            }
        }
        return result
    }
}
