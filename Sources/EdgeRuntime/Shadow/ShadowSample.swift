import FleetCore

/// One mirrored request after the shadow answered (or failed): what the shadow
/// evaluator hands to telemetry, as `InferenceEvent` is for a live request.
public struct ShadowSample: Sendable {
    /// The live module's name.
    public var module: String
    /// The shadow's bundle.
    public var bundle: ContentDigest
    /// The live version's bundle.
    public var liveBundle: ContentDigest
    /// The JSON the live version returned (and the caller got).
    public var live: [UInt8]
    /// The JSON the shadow returned, or why it failed.
    public var shadow: Result<[UInt8], ScoringError>
    /// Nil when the shadow failed.
    public var comparison: ShadowComparison?
    /// The shadow's own latency.
    public var latency: Duration

    public init(
        module: String, bundle: ContentDigest, liveBundle: ContentDigest, live: [UInt8],
        shadow: Result<[UInt8], ScoringError>, latency: Duration
    ) {
        self.module = module
        self.bundle = bundle
        self.liveBundle = liveBundle
        self.live = live
        self.shadow = shadow
        self.comparison = try? ShadowComparison(live: live, shadow: shadow.get())
        self.latency = latency
    }
}
