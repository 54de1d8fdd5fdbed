import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// An upload killed with SIGKILL midway and resumed by a new uploader on the same
/// buffer: what the crash tests of every record format start from.
enum InterruptedUpload {
    /// Buffers `entries` in a new buffer in `folder`, has `telemetry-bench upload` send
    /// them to `s3://telemetry/fleet` on `seaweed` in batches of 100 and kills it after 20
    /// objects, then uploads the rest in process; returns the buffer.
    static func run(_ entries: [TelemetryEntry], seaweed: SeaweedFS, folder: TemporaryDirectory) async throws -> TelemetryBuffer {
        try await seaweed.createBucket("telemetry")
        try seaweed.writeCredentialsFile(to: folder.file("credentials"))
        let path = folder.file("telemetry.sqlite")
        do {
            let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
            try await buffer.append(contentsOf: entries)
        }

        let child = try TelemetryBenchProcess.start([
            "upload", "--db", path, "--device-id", "gw-001", "--storage", "s3://telemetry/fleet", "--endpoint",
            seaweed.endpoint, "--credentials", folder.file("credentials"), "--batch-records", "100", "--print-objects",
        ])
        _ = child.readLines(atLeast: 20)
        #expect(child.killNow(), "the upload ended before it could be killed: \(child.errorOutput)")

        let buffer = try TelemetryBuffer(path: path, deviceId: "gw-001")
        #expect(try buffer.stats().buffered > 0)
        try await TelemetryUploader(buffer: buffer, destination: try StorageSettings(
            url: "s3://telemetry/fleet", endpoint: seaweed.endpoint, credentialsFile: folder.file("credentials")
        ).destination(), batchRecords: 100).uploadAll()
        return buffer
    }
}
