import FleetCore
import Foundation
import Logging

/// Brings the device to its accepted desired state: plans the steps with
/// `plan(desired:current:)` and carries them out, one desired state at a time. A newer
/// desired state cancels the one being applied (a download or a pip install under way
/// is ended) and is applied next.
///
/// A desired state that fails is tried again after `RuntimeSettings.applyRetry`'s capped,
/// jittered, growing delays; the state database (so the health report and `edge-runtime
/// status`) holds the failing step, the attempt and when the next one starts, and while
/// applying, the step the reconciler is on. A new desired state starts at once.
///
/// After a module starts with a new version it has to stay up for the rollback window;
/// if it does not, the module goes back to its last known good version and the
/// revision is reported `rolled-back` with the reason.
///
/// A module's shadow (`ModuleSpec.shadow`) is prepared and started with it, but never
/// decides the revision's status: a shadow whose bundle fails to download or whose
/// environment fails is started as `ShadowLaunch.unavailable`, so the supervisor reports
/// it in the module's health while the revision is `applied`.
public actor Reconciler {
    private let store: StateStore
    private let supervisor: Supervisor
    private let downloader: BundleDownloader
    private let reader: BundleReader
    private let environments: PythonEnvironments
    private let dataDirectory: DataDirectory
    private let settings: RuntimeSettings
    private let logger: Logger
    private var applying: Task<Void, Never>?
    private var retry: Task<Void, Never>?
    private var submissions = 0
    /// Set by `stop()`: no retry is scheduled or run after the daemon began to shut down.
    private var stopped = false
    /// The progress stored last and when, so a download's percentage is written at most
    /// a few times a second.
    private var lastProgress: (progress: ApplyProgress, at: ContinuousClock.Instant)?

    public init(
        store: StateStore, supervisor: Supervisor, downloader: BundleDownloader, dataDirectory: DataDirectory,
        settings: RuntimeSettings, logger: Logger
    ) {
        self.store = store
        self.supervisor = supervisor
        self.downloader = downloader
        self.reader = BundleReader(limits: settings.bundleLimits)
        self.environments = PythonEnvironments(
            dataDirectory: dataDirectory, venvTimeout: settings.venvTimeout, pipTimeout: settings.pipTimeout)
        self.dataDirectory = dataDirectory
        self.settings = settings
        self.logger = logger
    }

    /// Starts the installed modules as they were last applied, at once and without
    /// any network, in startup order.
    public func startInstalledModules() async {
        let installed = (try? store.appliedModules()) ?? []
        for module in installed.sorted(by: { ($0.spec.startupOrder, $0.name) < ($1.spec.startupOrder, $1.name) })
        where module.spec.desiredStatus == .running {
            do {
                await supervisor.run(try launch(module.spec), shadow: shadowLaunch(module.spec))
            } catch {
                recordLaunchFailure(module.spec, error)
            }
        }
    }

    /// Applies `desired` at once, superseding whatever is being applied or waiting for a retry.
    public func submit(_ desired: DesiredState) {
        enqueue(desired, attempt: 1)
    }

    private func enqueue(_ desired: DesiredState, attempt: Int) {
        submissions += 1
        let submission = submissions
        retry?.cancel()
        let previous = applying
        previous?.cancel()
        applying = Task {
            await previous?.value
            await self.apply(desired, submission: submission, attempt: attempt)
        }
    }

    // MARK: - Applying

    private func apply(_ desired: DesiredState, submission: Int, attempt: Int) async {
        logger.info("applying desired state", metadata: ["revision": "\(desired.revision)", "attempt": "\(attempt)"])
        lastProgress = nil
        let installed = Dictionary(((try? store.appliedModules()) ?? []).map { ($0.name, $0) }) { _, last in last }
        let running = await supervisor.runningModules()
        let unpacked = digests(in: dataDirectory.modules, suffix: "")
        let current = DeviceState(
            modules: installed.mapValues {
                InstalledModule(spec: $0.spec, isRunning: running[$0.name] != nil, rejectedDigest: $0.rejectedDigest)
            },
            cachedBundles: digests(in: dataDirectory.bundles, suffix: ".zip"),
            unpackedBundles: unpacked,
            readyEnvironments: unpacked.filter { digest in
                guard let manifest = manifest(of: digest), manifest.kind.isScoring else { return false }
                return environments.isReady(for: manifest.environment)
            })
        let steps = plan(desired: desired.modules, current: current)
        var run = Run(desired: desired, installed: installed)
        for (index, step) in steps.enumerated() {
            guard !Task.isCancelled else {
                logger.info("superseded by a newer desired state", metadata: ["revision": "\(desired.revision)"])
                return
            }
            logger.debug("step", metadata: ["step": "\(step)"])
            // Modules still in their rollback window may need the bundles they replaced.
            if step == .removeUnusedBundles, await !settleWatches(&run, percent: index * 100 / steps.count) { return }
            let label = self.label(of: step, in: desired)
            record(ApplyProgress(step: label, percent: index * 100 / steps.count), revision: desired.revision)
            await perform(step, label: label, in: &run)
        }
        guard await settleWatches(&run, percent: 100), !Task.isCancelled else { return }
        for spec in desired.modules where spec.desiredStatus == .stopped && run.installed[spec.name]?.spec != spec {
            run.save(AppliedModule(spec: spec, lastKnownGood: run.installed[spec.name]?.lastKnownGood), store: store)
        }
        for spec in desired.modules {
            if let module = run.installed[spec.name], module.rejectedDigest == spec.bundle.digest,
                module.spec.bundle.digest != spec.bundle.digest, !run.rollbacks.keys.contains(spec.name)
            {
                run.rollbacks[spec.name] = module.rejectedReason ?? "rolled back earlier"
            }
        }
        var status: DesiredStateStatus
        if !run.rollbacks.isEmpty {
            status = DesiredStateStatus(revision: desired.revision, status: .rolledBack, error: run.summary(run.rollbacks),
                modules: run.rollbacks.keys.sorted())
        } else if !run.failures.isEmpty {
            status = DesiredStateStatus(revision: desired.revision, status: .failed, error: run.summary(run.failures),
                modules: run.failures.keys.sorted())
        } else {
            status = DesiredStateStatus(revision: desired.revision, status: .applied)
        }
        var delay: Duration?
        if status.status == .failed, !stopped {
            var generator = SystemRandomNumberGenerator()
            let wait = settings.applyRetry.delay(attempt: attempt, using: &generator)
            delay = wait
            status.retry = ApplyRetry(
                step: run.failedStep ?? "applying", attempt: attempt,
                nextAttemptAt: Date().addingTimeInterval(Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18))
        }
        lastProgress = nil
        do {
            try store.setDesiredStatus(status)
        } catch {
            logger.error("cannot update the state database", metadata: ["error": "\(error)"])
        }
        logger.info(
            "desired state \(status.status.rawValue)",
            metadata: [
                "revision": "\(desired.revision)", "error": "\(status.error ?? "none")",
                "retryIn": "\(delay.map { "\($0)" } ?? "none")", "attempt": "\(attempt)",
            ])
        if let delay {
            scheduleRetry(desired, submission: submission, attempt: attempt, after: delay)
        }
    }

    /// Stores `progress` as the step the device is on, right away when the step changed,
    /// else (a download's percentage) at most every 250 ms.
    private func record(_ progress: ApplyProgress, revision: Int) {
        if let last = lastProgress, last.progress.step == progress.step,
            last.progress == progress || ContinuousClock.now - last.at < .milliseconds(250)
        {
            return
        }
        lastProgress = (progress, .now)
        try? store.setProgress(progress, revision: revision)
    }

    /// How progress names `step`: `downloading iris (sha256:3f2a9c01b7d4)`, `starting iris`.
    private func label(of step: Step, in desired: DesiredState) -> String {
        func subject(_ digest: ContentDigest) -> String {
            let users = desired.modules.filter { $0.bundle.digest == digest }.map(\.name)
                + desired.modules.filter { $0.shadow?.bundle.digest == digest }.map { "the shadow of \($0.name)" }
            return "\(users.joined(separator: ", ")) (sha256:\(digest.hex.prefix(12)))"
        }
        switch step {
        case .download(let bundle): return "downloading \(subject(bundle.digest))"
        case .verify(let bundle): return "verifying \(subject(bundle.digest))"
        case .unpack(let digest): return "unpacking \(subject(digest))"
        case .prepareEnvironment(let digest): return "creating environment \(bundleName(digest) ?? subject(digest))"
        case .stop(let name): return "stopping \(name)"
        case .remove(let name): return "removing \(name)"
        case .start(let spec), .switchVersion(_, let spec): return "starting \(spec.name)"
        case .setShadow(let spec): return "starting the shadow of \(spec.name)"
        case .rollBack(_, let spec, _): return "rolling back \(spec.name)"
        case .removeUnusedBundles: return "cleaning the bundle cache"
        }
    }

    /// `iris-scorer:2`, from the unpacked bundle's module.json.
    private func bundleName(_ digest: ContentDigest) -> String? {
        manifest(of: digest).map { "\($0.name):\($0.version)" }
    }

    /// The bookkeeping of one application of a desired state.
    private struct Run {
        let desired: DesiredState
        var installed: [String: AppliedModule]
        var brokenBundles: [ContentDigest: String] = [:]
        /// The step each broken bundle failed at, in progress's words.
        var brokenAt: [ContentDigest: String] = [:]
        var failures: [String: String] = [:]
        /// The step of the first failure, which the retry reports.
        var failedStep: String?
        var rollbacks: [String: String] = [:]
        /// Modules started in this run whose rollback window has not been watched yet.
        var watches: [Watch] = []

        mutating func save(_ module: AppliedModule, store: StateStore) {
            installed[module.name] = module
            try? store.save(module)
        }

        mutating func breakBundle(_ digest: ContentDigest, _ reason: String, at step: String) {
            brokenBundles[digest] = reason
            brokenAt[digest] = step
        }

        mutating func fail(_ module: String, _ reason: String, at step: String?) {
            failures[module] = reason
            if failedStep == nil { failedStep = step }
        }

        func summary(_ reasons: [String: String]) -> String {
            reasons.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        }
    }

    /// A module started with a new spec, and what it goes back to if it does not stay up.
    private struct Watch {
        var spec: ModuleSpec
        var fallback: ModuleSpec?
    }

    /// Watches every module started in this run for the rollback window, all at once
    /// (so startup order decides the order of starts, not a wait per module), and rolls
    /// back those that did not stay up. Returns false when the run was interrupted.
    private func settleWatches(_ run: inout Run, percent: Int) async -> Bool {
        let watches = run.watches
        run.watches = []
        guard !watches.isEmpty else { return true }
        let label = "checking that \(watches.map(\.spec.name).joined(separator: ", ")) \(watches.count == 1 ? "stays" : "stay") up"
        record(ApplyProgress(step: label, percent: percent), revision: run.desired.revision)
        let supervisor = self.supervisor
        let window = settings.rollbackWindow
        let verdicts = await withTaskGroup(of: (Int, Supervisor.Verdict).self) { group in
            for (index, watch) in watches.enumerated() {
                let name = watch.spec.name
                group.addTask { (index, await supervisor.watch(name, for: window)) }
            }
            var verdicts = [Supervisor.Verdict](repeating: .interrupted, count: watches.count)
            for await (index, verdict) in group { verdicts[index] = verdict }
            return verdicts
        }
        var complete = true
        for (watch, verdict) in zip(watches, verdicts) {
            switch verdict {
            case .stable:
                run.save(AppliedModule(spec: watch.spec, lastKnownGood: watch.spec), store: store)
            case .interrupted:
                complete = false
            case .failed(let reason):
                if let target = watch.fallback, target != watch.spec {
                    let step = Step.rollBack(from: watch.spec, to: target, reason: reason)
                    await perform(step, label: self.label(of: step, in: run.desired), in: &run)
                } else {
                    run.fail(watch.spec.name, "did not stay up: \(reason)", at: label)
                }
            }
        }
        return complete
    }

    /// Carries out `step`; `label` is its name in progress and in a failure's retry.
    private func perform(_ step: Step, label: String, in run: inout Run) async {
        switch step {
        case .download(let bundle):
            // The downloader writes the bytes as they arrive: their count is the progress.
            let partial = dataDirectory.partialBundle(bundle.digest)
            let revision = run.desired.revision
            let watcher = Task {
                while !Task.isCancelled {
                    let bytes = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? NSNumber)?.intValue ?? 0
                    self.record(
                        ApplyProgress(step: label, percent: min(100, bytes * 100 / max(1, bundle.size))), revision: revision)
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            defer { watcher.cancel() }
            do {
                try await downloader.download(bundle)
            } catch {
                run.breakBundle(bundle.digest, "\(error)", at: label)
            }
        case .verify(let bundle):
            guard run.brokenBundles[bundle.digest] == nil else { return }
            let archive = dataDirectory.bundle(bundle.digest)
            do {
                try reader.verifyArchive(at: archive, digest: bundle.digest, size: bundle.size)
            } catch {
                try? FileManager.default.removeItem(at: archive)
                run.breakBundle(bundle.digest, "\(error)", at: label)
            }
        case .unpack(let digest):
            guard run.brokenBundles[digest] == nil else { return }
            let folder = dataDirectory.moduleFolder(digest)
            guard !FileManager.default.fileExists(atPath: folder.path) else { return }
            do {
                try reader.unpack(archive: dataDirectory.bundle(digest), into: folder)
            } catch {
                run.breakBundle(digest, "\(error)", at: label)
            }
        case .prepareEnvironment(let digest):
            guard run.brokenBundles[digest] == nil else { return }
            guard let manifest = manifest(of: digest) else {
                run.breakBundle(digest, "\(BundleError.missingManifest)", at: label)
                return
            }
            let wheels = dataDirectory.moduleFolder(digest).appendingPathComponent("wheels")
            if manifest.environment.isUnpinned, !environments.isReady(for: manifest.environment) {
                logger.warning(
                    "installing unpinned requirements: the bundle was packaged before the hub pinned versions and hashes, so the index decides what runs; package the module again",
                    metadata: ["bundle": "\(digest)", "requirements": "\(manifest.requirements.joined(separator: ", "))"])
            }
            let observer = environmentObserver(name: "\(manifest.name):\(manifest.version)", revision: run.desired.revision)
            do {
                try await environments.prepare(
                    requirements: manifest.environment,
                    wheels: FileManager.default.fileExists(atPath: wheels.path) ? wheels : nil, observer: observer)
            } catch {
                run.breakBundle(digest, "\(error)", at: (try? store.status().desired.progress?.step) ?? label)
            }
        case .stop(let name):
            await supervisor.stop(name)
            if let spec = run.desired.modules.first(where: { $0.name == name }) {
                run.save(AppliedModule(spec: spec, lastKnownGood: run.installed[name]?.lastKnownGood), store: store)
            }
        case .remove(let name):
            await supervisor.remove(name)
            run.installed.removeValue(forKey: name)
            try? store.removeAppliedModule(named: name)
        case .start(let spec):
            await start(spec, replacing: nil, in: &run)
        case .switchVersion(let from, let to):
            await start(to, replacing: from, in: &run)
        case .setShadow(let spec):
            await supervisor.setShadow(spec.name, shadowLaunch(spec, brokenBundles: run.brokenBundles))
            // The live version is unchanged, so it stays good: with the new shadow.
            var lastKnownGood = run.installed[spec.name]?.lastKnownGood
            lastKnownGood?.shadow = spec.shadow
            run.save(AppliedModule(spec: spec, lastKnownGood: lastKnownGood), store: store)
        case .rollBack(let from, let to, let reason):
            logger.warning("rolling back", metadata: ["module": "\(to.name)", "reason": "\(reason)"])
            run.rollbacks[to.name] = "\(from.bundle.digest) did not stay up (\(reason)); back on \(to.bundle.digest)"
            run.save(
                AppliedModule(spec: to, lastKnownGood: to, rejectedDigest: from.bundle.digest, rejectedReason: reason),
                store: store)
            do {
                await supervisor.run(try launch(to), shadow: shadowLaunch(to))
            } catch {
                recordLaunchFailure(to, error)
            }
        case .removeUnusedBundles:
            removeUnusedBundles(keeping: run)
        }
    }

    /// Starts `spec` (stopping `previous` first); its rollback window is watched by
    /// `settleWatches` once every module of the run has started.
    private func start(_ spec: ModuleSpec, replacing previous: ModuleSpec?, in run: inout Run) async {
        if let reason = run.brokenBundles[spec.bundle.digest] {
            run.fail(spec.name, reason, at: run.brokenAt[spec.bundle.digest])
            return
        }
        let launch: ModuleLaunch
        do {
            launch = try self.launch(spec)
        } catch {
            run.fail(spec.name, "\(error)", at: "starting \(spec.name)")
            recordLaunchFailure(spec, error)
            return
        }
        let lastKnownGood = run.installed[spec.name]?.lastKnownGood
        run.save(AppliedModule(spec: spec, lastKnownGood: lastKnownGood), store: store)
        await supervisor.run(launch, shadow: shadowLaunch(spec, brokenBundles: run.brokenBundles))
        run.watches.append(Watch(spec: spec, fallback: lastKnownGood ?? previous))
    }

    private func manifest(of digest: ContentDigest) -> ModuleManifest? {
        let url = dataDirectory.moduleFolder(digest).appendingPathComponent(ModuleManifest.fileName)
        return (try? Data(contentsOf: url)).flatMap { try? FleetJSON.decode(ModuleManifest.self, from: $0) }
    }

    private func launch(_ spec: ModuleSpec) throws -> ModuleLaunch {
        let folder = dataDirectory.moduleFolder(spec.bundle.digest)
        let manifestURL = folder.appendingPathComponent(ModuleManifest.fileName)
        let manifest: ModuleManifest
        do {
            manifest = try FleetJSON.decode(ModuleManifest.self, from: Data(contentsOf: manifestURL))
        } catch {
            throw BundleError.invalidManifest("cannot read \(manifestURL.path): \(error)")
        }
        let python = manifest.kind.isScoring && environments.isReady(for: manifest.environment)
            ? environments.environment(for: manifest.environment).appendingPathComponent("bin/python").path : nil
        return try ModuleLaunch(spec: spec, manifest: manifest, folder: folder, python: python)
    }

    /// How to run `spec`'s shadow, or why it cannot run (`brokenBundles`: the bundles
    /// this run failed to prepare, with the reason); nil without a shadow.
    private func shadowLaunch(_ spec: ModuleSpec, brokenBundles: [ContentDigest: String] = [:]) -> ShadowLaunch? {
        guard let shadow = spec.shadow else { return nil }
        let digest = shadow.bundle.digest
        guard spec.kind.isScoring else {
            return .unavailable(digest: digest, reason: ShadowError.notScoring(module: spec.name).description)
        }
        if let reason = brokenBundles[digest] {
            return .unavailable(digest: digest, reason: ShadowError.unusable(module: spec.name, digest: digest, reason: reason).description)
        }
        var challenger = spec.withoutShadow
        challenger.bundle = shadow.bundle
        challenger.workers = shadow.workers
        do {
            let launch = try launch(challenger)
            guard let scoring = launch.scoring else {
                throw ModuleLaunchError.kindMismatch(module: spec.name, spec: .pythonScoring, bundle: .process)
            }
            return .ready(
                ShadowProgram(
                    digest: digest, folder: launch.folder, scoring: scoring, environment: launch.environment,
                    sampleRate: shadow.sampleRate))
        } catch {
            return .unavailable(digest: digest, reason: ShadowError.unusable(module: spec.name, digest: digest, reason: "\(error)").description)
        }
    }

    private func recordLaunchFailure(_ spec: ModuleSpec, _ error: any Error) {
        logger.error("cannot start module", metadata: ["module": "\(spec.name)", "error": "\(error)"])
        try? store.save(ModuleStatus(name: spec.name, bundleDigest: spec.bundle.digest, status: .failed, lastError: "\(error)"))
    }

    /// Stores the environment's progress and its processes straight from the commands
    /// (the state store is safe from any thread), so a killed runtime's successor ends them.
    private func environmentObserver(name: String, revision: Int) -> PythonEnvironments.Observer {
        let store = self.store
        return PythonEnvironments.Observer(
            commandStarted: { command in
                let step = command == .venv ? "creating environment \(name)" : "installing requirements of \(name)"
                try? store.setProgress(ApplyProgress(step: step), revision: revision)
            },
            processStarted: { pid in
                if let process = TrackedProcess.group(of: pid, name: "\(name) environment") { try? store.saveSetupProcess(process) }
            },
            processEnded: { try? store.removeSetupProcesses() })
    }

    private func scheduleRetry(_ desired: DesiredState, submission: Int, attempt: Int, after delay: Duration) {
        guard !stopped else { return }
        retry = Task {
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            self.retryIfCurrent(desired, submission: submission, attempt: attempt + 1)
        }
    }

    /// Ends the retries of a failed desired state and the application under way (a
    /// download or pip install is ended too), so nothing is applied once the daemon
    /// shuts down; returns when the application has stopped.
    public func stop() async {
        stopped = true
        retry?.cancel()
        applying?.cancel()
        await applying?.value
        if let revision = try? store.acceptedRevision() { try? store.setProgress(nil, revision: revision) }
    }

    private func retryIfCurrent(_ desired: DesiredState, submission: Int, attempt: Int) {
        guard submission == submissions, !stopped else { return }
        logger.info("retrying desired state", metadata: ["revision": "\(desired.revision)", "attempt": "\(attempt)"])
        enqueue(desired, attempt: attempt)
    }

    // MARK: - Bundle cache

    /// Keeps the bundles and environments no installed, last-known-good or desired
    /// module refers to within the cache budget, evicting the least recently used
    /// (`BundleCache`), and logs every eviction.
    private func removeUnusedBundles(keeping run: Run) {
        var keep = Set(run.desired.modules.flatMap(\.bundleDigests))
        for module in run.installed.values {
            keep.formUnion(module.spec.bundleDigests)
            if let good = module.lastKnownGood { keep.formUnion(good.bundleDigests) }
        }
        let cache = BundleCache(dataDirectory: dataDirectory, budget: settings.cacheBudgetBytes)
        let evictions = cache.trim(inUse: keep) { digest in
            manifest(of: digest).flatMap { $0.kind.isScoring ? $0.environment.key : nil }
        }
        for eviction in evictions {
            logger.info("evicted from the bundle cache", metadata: [
                "kind": "\(eviction.kind.rawValue)", "name": "\(eviction.name)", "bytes": "\(eviction.bytes)",
                "lastUsed": "\(eviction.lastUsed.formatted(.iso8601))", "budgetBytes": "\(settings.cacheBudgetBytes)",
            ])
        }
    }

    private func digests(in folder: URL, suffix: String) -> Set<ContentDigest> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return Set(names.compactMap { name in
            guard name.hasSuffix(suffix), !name.hasPrefix(".") else { return nil }
            return ContentDigest(hex: String(name.dropLast(suffix.count)))
        })
    }
}

extension ModuleSpec {
    /// The bundles this spec runs: its own and its shadow's.
    var bundleDigests: [ContentDigest] {
        [bundle.digest] + (shadow.map { [$0.bundle.digest] } ?? [])
    }
}
