import FleetCore
import Foundation
import Logging
import Synchronization

/// The device's drift monitors, one per version of each scoring module with
/// `telemetry.drift`: the supervisor starts one with each version it serves (a version
/// served again, as after a rollback, keeps its monitor), the health report carries the
/// latest window of the version each module runs, and `run` closes the windows on time
/// and records each as a `drift` telemetry record.
public final class InputDrift: Sendable {
    private struct Key: Hashable {
        var module: String
        var bundle: ContentDigest
    }

    private let monitors = Mutex<[Key: DriftMonitor]>([:])

    public init() {}

    /// The monitor of version `bundle` of `module`, made when it has none with `settings`.
    public func start(module: String, bundle: ContentDigest, settings: DriftSettings, baseline: DriftBaseline?) -> DriftMonitor {
        monitors.withLock { monitors in
            let key = Key(module: module, bundle: bundle)
            if let monitor = monitors[key], monitor.settings == settings { return monitor }
            let monitor = DriftMonitor(module: module, bundle: bundle, settings: settings, baseline: baseline)
            monitors[key] = monitor
            return monitor
        }
    }

    /// Forgets the monitors of a module no longer served.
    public func stop(module: String) {
        monitors.withLock { monitors in monitors = monitors.filter { $0.key.module != module } }
    }

    /// The latest closed window of version `bundle` of `module`.
    public func latest(module: String, bundle: ContentDigest) -> DriftWindow? {
        monitors.withLock { $0[Key(module: module, bundle: bundle)] }?.latest
    }

    /// Closes due windows every `tick` until cancelled: each closed window is appended to
    /// `buffer` as a `drift` record, then `onClose` runs (the daemon publishes the health report).
    public func run(
        buffer: TelemetryBuffer, tick: Duration = .milliseconds(500), logger: Logger, onClose: @escaping @Sendable () async -> Void
    ) async {
        while (try? await Task.sleep(for: tick)) != nil {
            let now = Date()
            let closed = monitors.withLock { $0 }.values.compactMap { monitor in monitor.close(now: now).map { (monitor.module, $0) } }
            guard !closed.isEmpty else { continue }
            do {
                try await buffer.append(contentsOf: try closed.map { module, window in
                    TelemetryEntry(
                        ts: window.end, module: module, kind: .drift,
                        data: try FleetJSON.decode(JSONValue.self, from: try FleetJSON.encode(window)))
                })
            } catch {
                logger.warning("cannot buffer drift telemetry", metadata: ["windows": "\(closed.count)", "error": "\(error)"])
            }
            await onClose()
        }
    }
}
