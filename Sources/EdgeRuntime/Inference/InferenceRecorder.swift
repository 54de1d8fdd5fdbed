import FleetCore
import Foundation
import Logging
import Synchronization

/// Turns sampled scoring requests into `inference` telemetry records, or Azure ML
/// `model_inputs`/`model_outputs` records with `format: azureml` (and compared
/// shadow requests into `shadow` records) without slowing the requests down: the
/// `ScoringHost` hook only queues the finished request in memory;
/// a background task turns the queue into records (bundle digest, latency, status, and
/// input/output as the module's `telemetry` settings ask) and appends them to the buffer
/// in one group commit every `flushInterval`.
///
/// The trade-off: a scoring response is not an acknowledgement of its telemetry record.
/// Requests answered in the last `flushInterval` before a crash or power cut may have no
/// record. (A 202 to `POST /v1/modules/{name}/telemetry` is an acknowledgement: it is
/// sent after the record's commit.)
public final class InferenceRecorder: Sendable {
    public let buffer: TelemetryBuffer
    public let flushInterval: Duration
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// Turns queued requests into records off Swift's cooperative threads, which serve the requests.
    private let converter = DispatchQueue(label: "inference-recorder.convert", qos: .utility)

    private struct Queued: Sendable {
        var request: Request
        var settings: TelemetrySettings
        var ts: Date
    }

    private enum Request: Sendable {
        case inference(InferenceEvent, digest: ContentDigest, version: Int?)
        case shadow(ShadowSample)
    }

    private struct Queue {
        var items: [Queued] = []
        var flushScheduled = false
        var dropped = 0
        /// The buffer refused the last flush for a full disk (said once, not every flush).
        var diskFull = false
    }

    public init(buffer: TelemetryBuffer, flushInterval: Duration = .milliseconds(50), logger: Logger) {
        self.buffer = buffer
        self.flushInterval = flushInterval
        self.logger = logger
    }

    /// The hook for the `ScoringHost` of module version `digest` (bundle `version`, Azure ML's
    /// `modelversion`), or nil when its settings record nothing (`sampleRate` 0).
    public func hook(
        digest: ContentDigest, version: Int? = nil, settings: TelemetrySettings
    ) -> (@Sendable (InferenceEvent) -> Void)? {
        guard settings.sampleRate > 0 else { return nil }
        return { [self] event in enqueue(.inference(event, digest: digest, version: version), settings: settings) }
    }

    /// The hook for a module's `ShadowEvaluator`: `shadow` records follow the live
    /// module's telemetry settings (its `sampleRate` of the compared requests, outputs
    /// only with `collectOutputs`); nil when they record nothing.
    public func shadowHook(settings: TelemetrySettings) -> (@Sendable (ShadowSample) -> Void)? {
        guard settings.sampleRate > 0 else { return nil }
        return { [self] sample in enqueue(.shadow(sample), settings: settings) }
    }

    private func enqueue(_ request: Request, settings: TelemetrySettings) {
        guard settings.sampleRate >= 1 || Double.random(in: 0..<1) < settings.sampleRate else { return }
        let schedule = queue.withLock { queue in
            queue.items.append(Queued(request: request, settings: settings, ts: Date()))
            defer { queue.flushScheduled = true }
            return !queue.flushScheduled
        }
        if schedule {
            Task { [self] in
                try? await Task.sleep(for: flushInterval)
                await flush()
            }
        }
    }

    /// Appends every queued request to the buffer now (the daemon calls it at shutdown).
    public func flush() async {
        let items = queue.withLock { queue in
            defer {
                queue.items = []
                queue.flushScheduled = false
            }
            return queue.items
        }
        guard !items.isEmpty else { return }
        let deviceId = buffer.deviceId
        let entries = await withCheckedContinuation { continuation in
            converter.async { continuation.resume(returning: items.flatMap { Self.entries($0, deviceId: deviceId) }) }
        }
        guard !entries.isEmpty else { return }
        do {
            try await buffer.append(contentsOf: entries)
            queue.withLock { $0.diskFull = false }
        } catch let error as TelemetryBufferError {
            guard case .diskFull = error else {
                logger.error("cannot buffer inference telemetry", metadata: ["records": "\(entries.count)", "error": "\(error)"])
                return
            }
            // The buffer counts them (refused, disk-full); the log is on the full disk too, so once.
            if queue.withLock({ queue in defer { queue.diskFull = true }; return !queue.diskFull }) {
                logger.warning("inference telemetry is dropped until the disk has room", metadata: ["error": "\(error)"])
            }
        } catch {
            logger.error("cannot buffer inference telemetry", metadata: ["records": "\(entries.count)", "error": "\(error)"])
        }
    }

    private static func entries(_ item: Queued, deviceId: String) -> [TelemetryEntry] {
        var entry: TelemetryEntry
        switch item.request {
        case .inference(let event, _, let version) where item.settings.format == .azureml:
            return event.azureMLEntries(
                deviceId: deviceId, modelVersion: version, inputs: item.settings.collectInputs,
                outputs: item.settings.collectOutputs, at: item.ts)
        case .inference(let event, let digest, _):
            entry = event.telemetryEntry(bundle: digest, input: item.settings.collectInputs, output: item.settings.collectOutputs)
        case .shadow(let sample):
            entry = sample.telemetryEntry(outputs: item.settings.collectOutputs)
        }
        entry.ts = item.ts
        return [entry]
    }
}
