import FleetCore
import Foundation
import Synchronization

/// Summarises one scoring module's inputs per feature over tumbling windows of
/// `windowSeconds` (docs/drift.md), with the bins of the bundle's baseline. Answered
/// requests only queue their bodies; `close(now:)`, on the daemon's tick, summarises them
/// (O(features) per row), ends the window once its time is up and keeps it as the latest.
public final class DriftMonitor: Sendable {
    public let module: String
    public let bundle: ContentDigest
    public let settings: DriftSettings
    private let baseline: DriftBaseline?
    private let names: [String]
    private let known: Set<String>
    private let bins: [String: FeatureBins]
    private let state: Mutex<State>
    private let pending = Mutex<[String]>([])

    private struct State {
        var start: Date
        var requests = 0
        var rows = 0
        var features: [String: FeatureAccumulator] = [:]
        var latest: DriftWindow?
    }

    public init(module: String, bundle: ContentDigest, settings: DriftSettings, baseline: DriftBaseline?, now: Date = Date()) {
        self.module = module
        self.bundle = bundle
        self.settings = settings
        self.baseline = baseline
        names = baseline?.features.map(\.name) ?? []
        known = Set(names)
        var bins: [String: FeatureBins] = [:]
        for feature in baseline?.features ?? [] { bins[feature.name] = feature.bins }
        self.bins = bins
        state = Mutex(State(start: now))
    }

    /// Queues the body of one answered request (`status` below 400) for the window; this
    /// runs on the request's path, so the parsing waits for `close(now:)` on the daemon's tick.
    public func observe(_ event: InferenceEvent) {
        guard event.status < 400 else { return }
        pending.withLock { bodies in
            if bodies.count < Self.pendingLimit { bodies.append(event.input) }
        }
    }

    /// Request bodies queued between two ticks at most; past it, a window summarises a
    /// sample of the requests rather than hold an unbounded queue.
    public static let pendingLimit = 10_000

    /// Adds the features of one request body to the window.
    public func observe(body: Data) {
        var values: [(String, InputFeatures.Value)] = []
        values.reserveCapacity(names.count)
        let rows = InputFeatures.visit(body, names: names) { name, value in values.append((name, value)) }
        guard rows > 0 else { return }
        state.withLock { state in
            state.requests += 1
            state.rows += rows
            for (name, value) in values where isSummarised(name) {
                if state.features[name] == nil {
                    guard state.features.count < Self.featureLimit else { continue }
                    state.features[name] = FeatureAccumulator(bins: bins[name])
                }
                state.features[name]!.add(value)
            }
        }
    }

    /// Features summarised per window at most (the first ones seen), so a window of a wide
    /// input (an image) keeps the health report well below the hub's 64 KiB limit.
    public static let featureLimit = 50

    /// With `features: auto` and a baseline, only the baseline's features (columns it does
    /// not know have no bins to compare with); without a baseline, every column seen.
    private func isSummarised(_ name: String) -> Bool {
        switch settings.features {
        case .auto: baseline == nil || known.contains(name)
        case .named: settings.includes(name)
        }
    }

    /// Ends the window when `now` is past its end and returns it when it saw requests; the
    /// next window starts where this one ended (or at `now` after a silence).
    public func close(now: Date = Date()) -> DriftWindow? {
        for body in pending.withLock({ bodies in defer { bodies = [] }; return bodies }) { observe(body: Data(body.utf8)) }
        let length = TimeInterval(max(1, settings.windowSeconds))
        return state.withLock { state -> DriftWindow? in
            let end = state.start.addingTimeInterval(length)
            guard now >= end else { return nil }
            let closed = DriftWindow(
                start: state.start, end: end, bundle: bundle, requests: state.requests, rows: state.rows,
                features: state.features.mapValues(\.summary))
            state.start = now.timeIntervalSince(end) < length ? end : now
            state.requests = 0
            state.rows = 0
            state.features = [:]
            guard closed.requests > 0 else { return nil }
            state.latest = closed
            return closed
        }
    }

    /// The latest closed window that saw requests.
    public var latest: DriftWindow? { state.withLock { $0.latest } }
}
