import FleetCore
import Foundation
import Logging

/// A module's shadow version at work (docs/inference.md, Shadow evaluation): its own
/// `ScoringHost` and workers, fed a sample of the live requests after their answer is
/// known, and the tally of how its answers compare with the live ones.
///
/// `mirror` runs on the live response path, so it only decides and hands off: it never
/// waits for the shadow, never changes the live answer, and never queues. A sampled
/// request that finds every shadow worker busy, or the shadow not (yet) running, is
/// counted `skipped`; at most `workers` comparisons are in flight, so a slow shadow
/// costs samples, not memory or live latency. The supervisor starts and stops it.
public final class ShadowEvaluator: @unchecked Sendable {
    /// The live module's name.
    public let module: String
    public let liveDigest: ContentDigest
    /// The shadow's bundle.
    public let digest: ContentDigest
    /// The share of live requests mirrored, from 0 to 1.
    public let sampleRate: Double
    public let configuration: ScoringConfiguration

    private let logger: Logger
    private let onSample: (@Sendable (ShadowSample) -> Void)?
    private let onWorkersChanged: (@Sendable () -> Void)?
    private let latencies = InferenceStatistics()
    private let lock = NSLock()
    private var host: ScoringHost?
    /// The host being started, whose workers exist before it serves.
    private var starting: ScoringHost?
    private var status = ModuleHealth.Status.backoff
    private var lastError: String?
    private var stopped = false
    private var inFlight = 0
    private var tally = ShadowTally()

    /// The name of a shadow's scoring host, in its errors and its log file
    /// (`edge-runtime logs iris.shadow`).
    public static func hostName(of module: String) -> String { "\(module).shadow" }

    /// - Parameters:
    ///   - onSample: called after every compared request, e.g. to record `shadow`
    ///     telemetry. It must not block.
    ///   - onWorkersChanged: called after one of its worker processes started or was
    ///     reaped (see `ScoringHost`). It must not block.
    public init(
        module: String, liveDigest: ContentDigest, digest: ContentDigest, sampleRate: Double,
        configuration: ScoringConfiguration, logger: Logger = Logger(label: "edge-runtime.shadow"),
        onSample: (@Sendable (ShadowSample) -> Void)? = nil, onWorkersChanged: (@Sendable () -> Void)? = nil
    ) {
        self.module = module
        self.liveDigest = liveDigest
        self.digest = digest
        self.sampleRate = min(max(sampleRate, 0), 1)
        self.configuration = configuration
        self.logger = logger
        self.onSample = onSample
        self.onWorkersChanged = onWorkersChanged
    }

    /// Starts the shadow's workers; returns once they all finished `init()`. When they
    /// cannot start, the shadow reports `backoff` with the reason and this throws, so
    /// the caller can try again later.
    public func start() async throws(ScoringError) {
        let host = ScoringHost(configuration: configuration, logger: logger, onWorkersChanged: onWorkersChanged)
        lock.withLock { starting = host }
        do {
            try await host.start()
        } catch {
            lock.withLock {
                starting = nil
                status = stopped ? .stopped : .backoff
                lastError = error.description
            }
            throw error
        }
        let serving = lock.withLock { () -> Bool in
            starting = nil
            guard !stopped else { return false }
            self.host = host
            status = .running
            lastError = nil
            return true
        }
        if serving {
            logger.info("shadow started", metadata: ["module": "\(module)", "bundle": "\(digest)"])
        } else {
            await host.stop()
        }
    }

    /// The shadow's worker processes (see `ScoringHost.workerProcesses`).
    public var workerProcesses: [WorkerProcess] {
        let hosts = lock.withLock { [host, starting].compactMap { $0 } }
        return hosts.flatMap(\.workerProcesses)
    }

    /// Stops the workers; the counters stay, for the last report.
    public func stop() async {
        let host = lock.withLock { () -> ScoringHost? in
            stopped = true
            status = .stopped
            defer { self.host = nil }
            return self.host
        }
        await host?.stop()
    }

    /// Hands one live request and its answer to the shadow, if sampled and a shadow
    /// worker is free; returns at once.
    public func mirror(_ request: [UInt8], live: [UInt8]) {
        guard sampleRate >= 1 || (sampleRate > 0 && Double.random(in: 0..<1) < sampleRate) else { return }
        let host = lock.withLock { () -> ScoringHost? in
            guard let host = self.host, inFlight < configuration.workers else {
                tally.skipped += 1
                return nil
            }
            inFlight += 1
            return host
        }
        guard let host else { return }
        Task { await self.evaluate(request, live: live, on: host) }
    }

    /// The shadow's record against the live version since it started.
    public var health: ShadowHealth {
        let (status, lastError, tally) = lock.withLock { () -> (ModuleHealth.Status, String?, ShadowTally) in
            (self.status, self.lastError, self.tally)
        }
        let latency = latencies.snapshot
        return ShadowHealth(
            bundleDigest: digest, status: status, lastError: lastError, samples: tally.samples, agreed: tally.agreed,
            errors: tally.errors, skipped: tally.skipped, differences: tally.differences, p50Ms: latency.p50Ms,
            p99Ms: latency.p99Ms)
    }

    private func evaluate(_ request: [UInt8], live: [UInt8], on host: ScoringHost) async {
        let started = ContinuousClock.now
        let answer: Result<[UInt8], ScoringError>
        do {
            answer = .success(try await host.score(request))
        } catch {
            answer = .failure(error)
        }
        let latency = ContinuousClock.now - started
        latencies.record(latency: latency, failed: (try? answer.get()) == nil)
        let sample = ShadowSample(
            module: module, bundle: digest, liveBundle: liveDigest, live: live, shadow: answer, latency: latency)
        lock.withLock {
            inFlight -= 1
            if let comparison = sample.comparison {
                tally.add(comparison)
            } else {
                tally.addError()
            }
        }
        onSample?(sample)
    }
}
