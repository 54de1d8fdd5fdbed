import FleetCore
import Foundation
import Logging

/// The daemon's telemetry, built from the device config: the buffer (always, so local
/// processes can post custom records), the inference recorder, the uploader when
/// `storage` is configured, and a `metric` record every `interval`.
public struct DeviceTelemetry: Sendable {
    public let buffer: TelemetryBuffer
    public let recorder: InferenceRecorder
    public let uploader: TelemetryUploader?
    /// Between two metric records, and between looks at an empty buffer for upload.
    public let interval: Duration
    private let logger: Logger

    public static let defaultIntervalSeconds = 60.0

    public init(config: DeviceConfig, dataDirectory: DataDirectory, logger: Logger) throws {
        let settings = config.telemetry ?? TelemetryBufferSettings()
        let defaults = TelemetryBufferLimits()
        let limits = TelemetryBufferLimits(
            maxRecords: settings.maxRecords ?? defaults.maxRecords, maxBytes: settings.maxBytes ?? defaults.maxBytes,
            ttlSeconds: settings.ttlSeconds ?? defaults.ttlSeconds)
        let seconds = max(settings.uploadIntervalSeconds ?? Self.defaultIntervalSeconds, 0.1)
        let buffer = try TelemetryBuffer(path: dataDirectory.telemetryBuffer.path, deviceId: config.deviceId, limits: limits)
        self.buffer = buffer
        recorder = InferenceRecorder(buffer: buffer, logger: logger)
        uploader = try config.storage.map {
            TelemetryUploader(buffer: buffer, destination: try $0.destination(), pollSeconds: seconds)
        }
        interval = .milliseconds(Int64(seconds * 1000))
        self.logger = logger
    }

    /// Uploads and records metrics until cancelled.
    public func run(supervisor: Supervisor, modules: LocalModules) async {
        await withTaskGroup(of: Void.self) { group in
            if let uploader { group.addTask { await uploader.run() } }
            group.addTask { await recordMetrics(supervisor: supervisor, modules: modules) }
        }
    }

    /// Appends what the recorder still holds (the daemon calls it at shutdown).
    public func flush() async {
        await recorder.flush()
    }

    private func recordMetrics(supervisor: Supervisor, modules: LocalModules) async {
        var metrics = RuntimeMetrics()
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            let entry = metrics.entry(statuses: await supervisor.statuses(), modules: modules)
            do {
                try await buffer.append(entry)
            } catch {
                logger.error("cannot buffer the runtime metrics", metadata: ["error": "\(error)"])
            }
        }
    }
}
