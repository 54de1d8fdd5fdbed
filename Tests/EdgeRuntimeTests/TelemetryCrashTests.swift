import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The `telemetry-bench` executable run as a child process, so a test can SIGKILL it mid-work.
final class TelemetryBenchProcess: @unchecked Sendable {
    let process: Process
    let output = Pipe()
    let errors = Pipe()

    /// `telemetry-bench` sits beside the test bundle in the build folder.
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("telemetry-bench").path
    }

    static func start(_ arguments: [String]) throws -> TelemetryBenchProcess {
        try #require(
            FileManager.default.isExecutableFile(atPath: executable),
            "\(executable) is missing: `swift build` builds it (swift test builds all products)")
        let child = TelemetryBenchProcess(process: Process())
        child.process.executableURL = URL(fileURLWithPath: executable)
        child.process.arguments = arguments
        child.process.standardOutput = child.output
        child.process.standardError = child.errors
        try child.process.run()
        return child
    }

    private init(process: Process) {
        self.process = process
    }

    /// Reads standard output until it holds `count` lines (or the child closed it); returns what was read.
    func readLines(atLeast count: Int) -> String {
        var text = ""
        while text.count(where: { $0 == "\n" }) < count {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return text
    }

    /// What the child wrote on standard error (call after it exited).
    var errorOutput: String {
        String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// SIGKILLs the child and reaps it; true if it was still running until then.
    func killNow() -> Bool {
        let wasRunning = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return wasRunning && process.terminationReason == .uncaughtSignal
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

@Suite struct TelemetryCrashTests {
    @Test(.timeLimit(.minutes(1)))
    func killingTheRuntimeMidIngestLosesNothingAcknowledged() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("telemetry.sqlite")
        let child = try TelemetryBenchProcess.start([
            "ingest", "--db", path, "--records", "10000000", "--concurrency", "16", "--print-acks",
        ])
        // Read acknowledgements as they come; kill once a few thousand are in.
        var text = child.readLines(atLeast: 3_000)
        #expect(child.killNow(), "the ingest ended before it could be killed: \(child.errorOutput)")
        text += String(decoding: child.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)

        let acknowledged = Set(text.split(separator: "\n").compactMap { line in
            line.hasPrefix("ack ") ? Int64(line.dropFirst(4)) : nil
        })
        #expect(acknowledged.count >= 3_000)
        let buffer = try TelemetryBuffer(path: path, deviceId: "bench")
        let stored = try buffer.readRecords(in: 1...Int64.max, limit: nil).map(\.seq)
        #expect(acknowledged.isSubset(of: Set(stored)), "\(acknowledged.subtracting(stored).count) acknowledged records lost")
        #expect(stored == Array(1...Int64(stored.count)), "sequence numbers have gaps or repeats")
        #expect(try buffer.stats().lastSeq == Int64(stored.count))
    }
}
