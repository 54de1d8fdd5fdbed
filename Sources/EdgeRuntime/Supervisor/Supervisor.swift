import FleetCore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Keeps modules running: each is a child process in its own process group, restarted
/// by its restart policy after a capped exponential back-off, stopped gracefully
/// (SIGTERM to the group, SIGKILL after the grace period), with its output in a
/// size-capped log. Every change is written to the state store, so `edge-runtime
/// status` can show it and a restarted runtime can find leftover processes.
///
/// A `python-scoring` module runs as a `ScoringHost` instead of one process: it counts as
/// up once every worker's `init()` returned (and is then in the local API's module table),
/// its start failing counts as an exit with code 1, and a worker that stays down for
/// `ScoringServices.unhealthyAfter` counts as one too; the restart policy and the rollback
/// window treat both like a process that exited, and so does a worker that crashes
/// within the rollback window.
///
/// A new version of a ready scoring module starts beside the old one, which serves until
/// the new one is ready; then the local API switches to the new one in one step and the
/// old one stays warm as its fallback until the new version passed its rollback window
/// (`watch`), and then finishes the requests it has in hand and stops. A new version that
/// fails to start, or crashes, leaves the old one serving, and a rollback to it resumes
/// it at once. Every worker's pid is recorded with the module, so a runtime started after
/// a crash ends the workers its predecessor left (`LeftoverProcesses`).
///
/// A module's shadow version (`ShadowLaunch`) runs beside it as a `ShadowEvaluator` with
/// its own workers: it starts with the module, is replaced alone by `setShadow`, and
/// stops with the module. A shadow whose `init()` raises is retried with the back-off
/// schedule; it is reported in the module's status and never counts as the module
/// exiting, so it cannot fail or roll back the live version.
public actor Supervisor {
    private let store: StateStore
    private let dataDirectory: DataDirectory
    private let settings: RuntimeSettings
    private let logger: Logger
    private let scoring: ScoringServices
    private var modules: [String: Supervised] = [:]

    private struct Supervised {
        var launch: ModuleLaunch
        var status: ModuleStatus
        var log: RotatingLog
        /// Number of the next restart since the module last ran healthily (for back-off).
        var attempt = 0
        /// Exits the supervisor did not ask for and the restart policy does not expect, since `run`.
        var unexpectedExits = 0
        var startedInstant: ContinuousClock.Instant?
        var stopping = false
        /// Changes on every run and stop, so a delayed restart of an older run does nothing.
        var generation = 0
        var restartTask: Task<Void, Never>?
        /// The scoring host of a `python-scoring` module, from its start until it stops.
        var host: ScoringHost?
        /// True once the scoring host's workers all finished `init()`.
        var ready = false
        /// The module's running shadow version, from `run` or `setShadow` until the
        /// module stops; nil without one, or when it is unavailable (see `status.shadow`).
        var shadow: Shadow?
        /// The shadow's log (`<module>.shadow`), kept across the module's versions.
        var shadowLog: RotatingLog?
        /// The version a scoring module is switching from, until the new one passed its
        /// rollback window or the module goes back to it.
        var previous: Previous?
        /// Scoring hosts of replaced versions, until their workers stopped.
        var retiring: [ScoringHost] = []
    }

    /// A scoring module's old version during a switch: it serves until the new one is
    /// ready, then it is the fallback (`LocalModules.setFallback`).
    private struct Previous {
        var launch: ModuleLaunch
        var host: ScoringHost
    }

    private struct Shadow {
        var evaluator: ShadowEvaluator
        /// Starts the evaluator, retrying with back-off while its `init()` raises.
        var starting: Task<Void, Never>
    }

    /// How a module fared during a watch window.
    public enum Verdict: Equatable, Sendable {
        case stable
        case failed(String)
        /// The module was stopped or replaced, or the watcher was cancelled.
        case interrupted
    }

    public init(
        store: StateStore, dataDirectory: DataDirectory, settings: RuntimeSettings, logger: Logger,
        scoring: ScoringServices = ScoringServices()
    ) {
        self.store = store
        self.dataDirectory = dataDirectory
        self.settings = settings
        self.logger = logger
        self.scoring = scoring
    }

    /// Starts `launch`, and `shadow` beside it; a module of the same name that is
    /// running is stopped first — except a ready scoring module given another scoring
    /// version, which switches without a gap (see above), and one given the version it is
    /// switching from, which goes back to it at once.
    public func run(_ launch: ModuleLaunch, shadow: ShadowLaunch? = nil) async {
        let name = launch.name
        if let previous = modules[name]?.previous, previous.launch == launch {
            await resume(name, previous, shadow: shadow)
            return
        }
        var previous: Previous?
        if let module = modules[name], !module.stopping, module.ready, let host = module.host,
            module.launch.scoring != nil, launch.scoring != nil
        {
            previous = Previous(launch: module.launch, host: host)
            modules[name]?.host = nil
            modules[name]?.ready = false
            if let older = module.previous {
                modules[name]?.previous = nil
                dismiss(older.host, of: name, drain: true)
            }
            modules[name]?.generation += 1
            modules[name]?.restartTask?.cancel()
            await stopShadow(name)
        } else if let module = modules[name],
            module.status.pid != nil || module.host != nil || module.shadow != nil || module.previous != nil
        {
            await stop(name)
        }
        modules[name]?.restartTask?.cancel()
        let generation = (modules[name]?.generation ?? 0) + 1
        let log = modules[name]?.log
            ?? RotatingLog(url: dataDirectory.log(of: name), maximumBytes: settings.logFileBytes, keep: settings.logFilesKept)
        modules[name] = Supervised(
            launch: launch, status: ModuleStatus(name: name, bundleDigest: launch.digest, status: .stopped),
            log: log, generation: generation, shadowLog: modules[name]?.shadowLog, previous: previous,
            retiring: modules[name]?.retiring ?? [])
        spawn(name)
        startShadow(name, shadow)
    }

    /// Makes the version a module was switching from its live version again, at once: it
    /// never stopped serving. The version that replaced it stops.
    private func resume(_ name: String, _ previous: Previous, shadow: ShadowLaunch?) async {
        guard var module = modules[name] else { return }
        logger.info("resuming the previous version", metadata: ["module": "\(name)", "bundle": "\(previous.launch.digest)"])
        module.restartTask?.cancel()
        module.restartTask = nil
        module.generation += 1
        let replaced = module.host
        module.launch = previous.launch
        module.host = previous.host
        module.previous = nil
        module.ready = true
        module.stopping = false
        module.attempt = 0
        module.unexpectedExits = 0
        module.startedInstant = .now
        module.status = ModuleStatus(
            name: name, bundleDigest: previous.launch.digest, status: .running, startedAt: Date())
        modules[name] = module
        scoring.modules.set(previous.host)
        scoring.modules.setFallback(name, nil)
        if let replaced { dismiss(replaced, of: name, drain: false) }
        persist(name)
        let generation = module.generation
        Task { [self] in await watchReadiness(name, host: previous.host, generation: generation) }
        await stopShadow(name)
        startShadow(name, shadow)
        persist(name)
    }

    /// Takes a replaced version's scoring host out of service: it stops once it answered
    /// the requests it has (`drain`), or at once; its workers stay recorded until then.
    private func dismiss(_ host: ScoringHost, of name: String, drain: Bool) {
        modules[name]?.retiring.append(host)
        persist(name)
        Task { [self] in
            if drain { await host.retire() } else { await host.stop() }
            await dismissed(host, of: name)
        }
    }

    private func dismissed(_ host: ScoringHost, of name: String) {
        modules[name]?.retiring.removeAll { $0 === host }
        persist(name)
    }

    /// Replaces the shadow of a module the supervisor keeps running (nil stops it),
    /// leaving the live version as it is.
    public func setShadow(_ name: String, _ shadow: ShadowLaunch?) async {
        guard let module = modules[name], !module.stopping else { return }
        await stopShadow(name)
        modules[name]?.status.shadow = nil
        startShadow(name, shadow)
        persist(name)
    }

    /// Stops a module gracefully and keeps it stopped.
    public func stop(_ name: String) async {
        guard var module = modules[name] else { return }
        module.stopping = true
        module.generation += 1
        module.restartTask?.cancel()
        module.restartTask = nil
        let hosts = [module.host, module.previous?.host].compactMap { $0 } + module.retiring
        module.host = nil
        module.previous = nil
        module.ready = false
        modules[name] = module
        scoring.modules.remove(name)
        if !hosts.isEmpty {
            logger.info("stopping scoring module", metadata: ["module": "\(name)"])
            for host in hosts { await host.stop() }
        }
        if let pid = module.status.pid {
            logger.info("stopping module", metadata: ["module": "\(name)", "pid": "\(pid)"])
            kill(-pid, SIGTERM)
            if await !waitForExit(of: name, pid: pid, within: settings.stopGracePeriod) {
                logger.warning("module ignored SIGTERM; killing its process group", metadata: ["module": "\(name)"])
                kill(-pid, SIGKILL)
                _ = await waitForExit(of: name, pid: pid, within: .seconds(10))
            }
        }
        await stopShadow(name)
        modules[name]?.status.status = .stopped
        persist(name)
    }

    /// Stops a module and forgets it.
    public func remove(_ name: String) async {
        await stop(name)
        modules[name]?.log.close()
        modules[name]?.shadowLog?.close()
        modules.removeValue(forKey: name)
        scoring.drift?.stop(module: name)
        do {
            try store.removeModuleStatus(named: name)
        } catch {
            logger.error("cannot update the state database", metadata: ["error": "\(error)"])
        }
    }

    /// Stops every module, in descending startup order of `order` (unknown names last).
    public func stopAll(order: [String] = []) async {
        let names = order.reversed().filter { modules[$0] != nil } + modules.keys.filter { !order.contains($0) }.sorted()
        for name in names { await stop(name) }
    }

    /// The modules the supervisor was told to keep running (including those in back-off).
    public func runningModules() -> [String: ModuleLaunch] {
        modules.filter { !$0.value.stopping }.mapValues(\.launch)
    }

    /// The status of every module.
    public func statuses() -> [ModuleStatus] {
        modules.values.map { module in
            var status = module.status
            if let evaluator = module.shadow?.evaluator { status.shadow = evaluator.health }
            return status
        }.sorted { $0.name < $1.name }
    }

    /// Waits `window` and says whether `name` ran without an unexpected exit all along;
    /// returns at once when it fails.
    public func watch(_ name: String, for window: Duration) async -> Verdict {
        guard let generation = modules[name]?.generation else { return .interrupted }
        var deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            guard let module = modules[name], module.generation == generation, !Task.isCancelled else {
                return .interrupted
            }
            if module.unexpectedExits > 0 {
                return .failed(module.status.lastError ?? "exited")
            }
            if module.ready, let host = module.host, host.crashCount > 0 {
                return .failed("a scoring worker crashed: \(host.lastFailure ?? "it exited")")
            }
            // A scoring module's window starts when it is ready (its start has its own timeout).
            if module.host != nil, !module.ready {
                deadline = ContinuousClock.now + window
            }
            await Self.nap()
        }
        releasePrevious(name, generation: generation)
        return .stable
    }

    /// The new version passed its rollback window: the old one finishes its requests in
    /// hand and stops.
    private func releasePrevious(_ name: String, generation: Int) {
        guard modules[name]?.generation == generation, let previous = modules[name]?.previous else { return }
        modules[name]?.previous = nil
        scoring.modules.setFallback(name, nil)
        logger.info("stopping the previous version", metadata: ["module": "\(name)", "bundle": "\(previous.launch.digest)"])
        dismiss(previous.host, of: name, drain: true)
    }

    // MARK: - Processes

    private func spawn(_ name: String) {
        guard var module = modules[name], !module.stopping else { return }
        if let program = module.launch.scoring {
            startScoring(name, program)
            return
        }
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            childExited(name, pid: nil, exitCode: 126, error: "cannot create a pipe: \(String(cString: strerror(errno)))")
            return
        }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do {
            pid = try ProcessLauncher.spawn(
                command: module.launch.command, directory: module.launch.folder,
                environment: environment(of: module.launch), output: descriptors[1])
        } catch {
            close(descriptors[0])
            close(descriptors[1])
            module.log.write(Data("edge-runtime: \(error)\n".utf8))
            logger.error("cannot start module", metadata: ["module": "\(name)", "error": "\(error)"])
            childExited(name, pid: nil, exitCode: 127, error: "\(error)")
            return
        }
        close(descriptors[1])
        LogPump.start(reading: descriptors[0], into: module.log)
        module.startedInstant = .now
        module.status.status = .running
        module.status.pid = pid
        module.status.processGroup = pid
        module.status.processStartTicks = ProcessTable.entry(pid: pid)?.startTicks
        module.status.startedAt = Date()
        modules[name] = module
        persist(name)
        scoring.modules.set(name, scoring: nil)
        logger.info("module started", metadata: ["module": "\(name)", "pid": "\(pid)", "bundle": "\(module.launch.digest)"])
        let thread = Thread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let exit = ExitStatus(waitStatus: status)
            Task { await self.childExited(name, pid: pid, exitCode: exit.code, error: exit.succeeded ? nil : exit.description) }
        }
        thread.start()
    }

    private func childExited(_ name: String, pid: pid_t?, exitCode: Int32, error: String?) {
        guard var module = modules[name], module.status.pid == pid else { return }
        // During a switch the old version serves on.
        if module.previous == nil { scoring.modules.remove(name) }
        if let pid {
            // Whatever the module left behind in its group goes with it.
            kill(-pid, SIGKILL)
        }
        module.status.pid = nil
        module.status.processGroup = nil
        module.status.processStartTicks = nil
        module.status.lastExitCode = exitCode
        module.status.lastError = error
        if module.stopping {
            module.status.status = .stopped
            modules[name] = module
            persist(name)
            return
        }
        // A clean exit is what a one-shot module (`never`, `on-failure`) is expected to do.
        if exitCode != 0 || module.launch.restartPolicy == .always || module.launch.restartPolicy == .onUnhealthy {
            module.unexpectedExits += 1
        }
        let uptime = module.startedInstant.map { ContinuousClock.now - $0 } ?? .zero
        module.attempt = settings.backoff.nextAttempt(after: module.attempt, uptime: uptime)
        let restart = switch module.launch.restartPolicy {
        case .always: true
        case .onFailure, .onUnhealthy: exitCode != 0
        case .never: false
        }
        if restart {
            let delay = settings.backoff.delay(attempt: module.attempt)
            module.status.status = .backoff
            let generation = module.generation
            module.restartTask = Task { [self] in
                try? await Task.sleep(for: delay)
                guard !Task.isCancelled else { return }
                self.restart(name, generation: generation)
            }
            logger.warning(
                "module exited; restarting after back-off",
                metadata: ["module": "\(name)", "reason": "\(error ?? "exited with code 0")", "delay": "\(delay)"])
        } else {
            module.status.status = exitCode == 0 ? .stopped : .failed
            logger.warning("module exited", metadata: ["module": "\(name)", "reason": "\(error ?? "exited with code 0")"])
        }
        modules[name] = module
        persist(name)
    }

    // MARK: - Scoring hosts

    private func startScoring(_ name: String, _ program: ScoringProgram) {
        guard var module = modules[name] else { return }
        let configuration = ScoringConfiguration(
            module: name, moduleDirectory: module.launch.folder, entry: program.entry, kind: program.kind,
            version: program.version, models: program.models,
            python: program.python,
            workers: program.workers, environment: environment(of: module.launch), requestTimeout: scoring.requestTimeout,
            log: module.log)
        let record = scoring.recorder?.hook(digest: module.launch.digest, version: program.version, settings: program.telemetry)
        let monitor = program.telemetry.drift.flatMap { drift in
            scoring.drift?.start(module: name, bundle: module.launch.digest, settings: drift, baseline: program.baseline)
        }
        let onRequest: (@Sendable (InferenceEvent) -> Void)?
        if let monitor {
            onRequest = { event in
                record?(event)
                monitor.observe(event)
            }
        } else {
            onRequest = record
        }
        let host = ScoringHost(
            configuration: configuration, logger: logger, onRequest: onRequest,
            onWorkersChanged: { Task { await self.persist(name) } })
        // Until it is ready the old version serves, or the local API answers 503.
        if module.previous == nil { scoring.modules.setStarting(name) }
        module.host = host
        module.ready = false
        module.startedInstant = .now
        // Not serving yet: `running` only once every worker's init() returned.
        module.status.status = .backoff
        module.status.startedAt = Date()
        modules[name] = module
        persist(name)
        logger.info(
            "starting scoring module",
            metadata: ["module": "\(name)", "workers": "\(program.workers)", "bundle": "\(module.launch.digest)"])
        let generation = module.generation
        Task { [self] in
            do {
                try await host.start()
                await scoringStarted(name, host: host, generation: generation)
            } catch {
                await scoringFailed(name, host: host, generation: generation, reason: "\(error)")
            }
        }
    }

    private func scoringStarted(_ name: String, host: ScoringHost, generation: Int) async {
        guard var module = modules[name], module.generation == generation, module.host === host else {
            await host.stop()
            return
        }
        module.ready = true
        module.status.status = .running
        module.status.lastError = nil
        modules[name] = module
        persist(name)
        scoring.modules.set(host)
        if let previous = module.previous {
            scoring.modules.setFallback(name, previous.host)
            // Also when no one watches the window (a newer desired state interrupted the watch).
            let window = settings.rollbackWindow + .seconds(1)
            Task { [self] in
                try? await Task.sleep(for: window)
                releasePrevious(name, generation: generation)
            }
        }
        logger.info("module started", metadata: ["module": "\(name)", "bundle": "\(module.launch.digest)"])
        Task { [self] in await watchReadiness(name, host: host, generation: generation) }
    }

    private func scoringFailed(_ name: String, host: ScoringHost, generation: Int, reason: String) async {
        guard var module = modules[name], module.generation == generation, module.host === host else { return }
        module.host = nil
        module.ready = false
        modules[name] = module
        module.log.write(Data("edge-runtime: \(reason)\n".utf8))
        // Recorded before the await, so a module replaced meanwhile is not taken for this one.
        childExited(name, pid: nil, exitCode: 1, error: reason)
        if let previous = module.previous {
            // A new version that fails leaves the old one serving.
            scoring.modules.set(previous.host)
            scoring.modules.setFallback(name, nil)
        } else {
            // Until it runs again, the local API answers 503 with why, not 404.
            scoring.modules.setFailed(name, lastError: reason)
        }
        dismiss(host, of: name, drain: false)
    }

    /// Treats a scoring module that stays not ready (a worker keeps failing to restart)
    /// for `unhealthyAfter` as failed.
    private func watchReadiness(_ name: String, host: ScoringHost, generation: Int) async {
        var notReadySince: ContinuousClock.Instant?
        while let module = modules[name], module.generation == generation, module.host === host {
            if host.isReady {
                notReadySince = nil
            } else if let since = notReadySince {
                if ContinuousClock.now - since >= scoring.unhealthyAfter {
                    let reason = "unhealthy for \(scoring.unhealthyAfter): \(host.lastFailure ?? "a worker is down")"
                    await scoringFailed(name, host: host, generation: generation, reason: reason)
                    return
                }
            } else {
                notReadySince = .now
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The module's environment plus `EDGE_TELEMETRY_URL`, where it can post custom telemetry.
    private func environment(of launch: ModuleLaunch) -> [String: String] {
        var environment = launch.environment
        if let url = scoring.localAPIURL { environment["EDGE_TELEMETRY_URL"] = url }
        return environment
    }

    // MARK: - Shadows

    private func startShadow(_ name: String, _ launch: ShadowLaunch?) {
        guard var module = modules[name], let launch else { return }
        switch launch {
        case .unavailable(let digest, let reason):
            module.status.shadow = ShadowHealth(bundleDigest: digest, status: .failed, lastError: reason)
            modules[name] = module
            logger.error("shadow cannot start", metadata: ["module": "\(name)", "bundle": "\(digest)", "error": "\(reason)"])
        case .ready(let program):
            var environment = program.environment
            if let url = scoring.localAPIURL { environment["EDGE_TELEMETRY_URL"] = url }
            let hostName = ShadowEvaluator.hostName(of: name)
            let log = module.shadowLog
                ?? RotatingLog(url: dataDirectory.log(of: hostName), maximumBytes: settings.logFileBytes, keep: settings.logFilesKept)
            module.shadowLog = log
            let configuration = ScoringConfiguration(
                module: hostName, moduleDirectory: program.folder, entry: program.scoring.entry,
                kind: program.scoring.kind, version: program.scoring.version,
                python: program.scoring.python, workers: program.scoring.workers, environment: environment,
                requestTimeout: scoring.requestTimeout, log: log,
                niceness: ScoringConfiguration.backgroundNiceness)
            let evaluator = ShadowEvaluator(
                module: name, liveDigest: module.launch.digest, digest: program.digest, sampleRate: program.sampleRate,
                configuration: configuration, logger: logger,
                onSample: scoring.recorder?.shadowHook(settings: program.scoring.telemetry),
                onWorkersChanged: { Task { await self.persist(name) } })
            let backoff = settings.backoff
            let starting = Task { [self] in
                var attempt = 0
                while !Task.isCancelled {
                    do {
                        try await evaluator.start()
                        break
                    } catch {
                        attempt += 1
                        logger.warning(
                            "shadow failed to start; retrying after back-off",
                            metadata: ["module": "\(name)", "error": "\(error)", "delay": "\(backoff.delay(attempt: attempt))"])
                        shadowChanged(name, evaluator)
                        try? await Task.sleep(for: backoff.delay(attempt: attempt))
                    }
                }
                shadowChanged(name, evaluator)
            }
            module.shadow = Shadow(evaluator: evaluator, starting: starting)
            module.status.shadow = evaluator.health
            modules[name] = module
            scoring.modules.setShadow(evaluator)
            logger.info(
                "starting shadow",
                metadata: ["module": "\(name)", "bundle": "\(program.digest)", "sampleRate": "\(program.sampleRate)"])
        }
        persist(name)
    }

    /// Records a shadow's new state, unless it was replaced meanwhile.
    private func shadowChanged(_ name: String, _ evaluator: ShadowEvaluator) {
        guard modules[name]?.shadow?.evaluator === evaluator else { return }
        persist(name)
    }

    /// Stops a module's shadow; its last numbers stay in the module's status.
    private func stopShadow(_ name: String) async {
        guard let shadow = modules[name]?.shadow else { return }
        modules[name]?.shadow = nil
        shadow.starting.cancel()
        let evaluator = shadow.evaluator
        scoring.modules.removeShadow(evaluator)
        logger.info("stopping shadow", metadata: ["module": "\(name)"])
        await evaluator.stop()
        if modules[name]?.shadow == nil { modules[name]?.status.shadow = evaluator.health }
    }

    private func restart(_ name: String, generation: Int) {
        guard let module = modules[name], module.generation == generation, !module.stopping else { return }
        modules[name]?.status.restarts += 1
        spawn(name)
    }

    private func waitForExit(of name: String, pid: pid_t, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while modules[name]?.status.pid == pid {
            if ContinuousClock.now >= deadline { return false }
            await Self.nap()
        }
        return true
    }

    private func persist(_ name: String) {
        if let evaluator = modules[name]?.shadow?.evaluator { modules[name]?.status.shadow = evaluator.health }
        if let module = modules[name], module.launch.scoring != nil {
            let hosts = [module.host, module.previous?.host].compactMap { $0 } + module.retiring
            modules[name]?.status.scoringWorkers =
                hosts.flatMap(\.workerProcesses) + (module.shadow?.evaluator.workerProcesses ?? [])
        }
        guard let status = modules[name]?.status else { return }
        do {
            try store.save(status)
        } catch {
            logger.error("cannot update the state database", metadata: ["error": "\(error)"])
        }
    }

    /// A short pause that a cancelled task still takes, so polling loops never spin.
    private static func nap() async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) { continuation.resume() }
        }
    }
}
