import FleetCore
import Foundation
import Logging
import NIOCore

/// Serves one `python-scoring` module: starts its `workers` Python processes running
/// the scoring host, spreads requests over the idle ones, and keeps them alive — a
/// worker that crashed while scoring is replaced (that request gets 503), a worker whose
/// `run` exceeds the request timeout is killed and replaced (504), an exception in `run`
/// comes back as a 500 and the worker stays up. Ready only once every worker's `init()` returned.
/// A worker that died while idle is noticed (on every check-out and twice a second) and
/// replaced before it is handed a request; requests wait for the replacement meanwhile.
/// Its workers' sockets and timeouts live on `InferenceLoop`, the local API's event loop.
public final class ScoringHost: @unchecked Sendable {
    public let configuration: ScoringConfiguration
    public var module: String { configuration.module }

    private let eventLoop = InferenceLoop.eventLoop
    /// The head of this module's Open Inference requests (its name and version).
    private let inferenceHead: [UInt8]
    private let logger: Logger
    private let statistics = InferenceStatistics()
    private let onRequest: (@Sendable (InferenceEvent) -> Void)?
    private let onWorkersChanged: (@Sendable () -> Void)?
    private let lock = NSLock()
    /// Every worker process started and not yet reaped, by pid, with its start time.
    private var processes: [pid_t: UInt64] = [:]
    private var crashes = 0
    private var slots: [Slot]
    private var waiters: [Waiter] = []
    private var started = false
    private var stopped = false
    private var restarts = 0
    private var lastError: String?
    private var nextWaiterID = 0
    private var metadata: ModelMetadata?

    private enum Slot {
        case starting
        case idle(ScoringWorker)
        case busy(ScoringWorker)
        case stopped

        /// A worker that finished `init()` is in the slot.
        var isUp: Bool {
            switch self {
            case .idle, .busy: true
            case .starting, .stopped: false
            }
        }

        var isBusy: Bool {
            if case .busy = self { true } else { false }
        }
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<(Int, ScoringWorker)?, Never>
        /// Ends the wait after the request timeout; cancelled when the wait ends sooner.
        var timer: Scheduled<Void>?

        func resume(returning checkout: (Int, ScoringWorker)?) {
            timer?.cancel()
            continuation.resume(returning: checkout)
        }
    }

    /// - Parameters:
    ///   - onRequest: called after every scoring request (success or not),
    ///     e.g. to record inference telemetry. It must not block.
    ///   - onWorkersChanged: called after a worker process started or was reaped, so its
    ///     pid can be recorded (`workerProcesses`). It must not block.
    public init(
        configuration: ScoringConfiguration, logger: Logger = Logger(label: "edge-runtime.inference"),
        onRequest: (@Sendable (InferenceEvent) -> Void)? = nil, onWorkersChanged: (@Sendable () -> Void)? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onRequest = onRequest
        self.onWorkersChanged = onWorkersChanged
        self.slots = Array(repeating: .starting, count: configuration.workers)
        self.inferenceHead = ScoringWorker.inferenceHead(
            name: configuration.module, version: configuration.version.map(String.init))
    }

    /// Starts every worker and returns once all of their `init()` calls returned.
    /// Throws `ScoringError.startFailed` (and stops the workers already started) if a
    /// worker cannot start, `init()` raised, or it took longer than `startTimeout`.
    public func start() async throws(ScoringError) {
        do throws(ScoringError) {
            try configuration.layOutAzureMLModels()
        } catch {
            lock.withLock {
                lastError = error.description
                stopped = true
            }
            throw error
        }
        let results = await withTaskGroup(of: Result<(Int, ScoringWorker, ModelMetadata), ScoringError>.self) { group in
            for index in 0..<configuration.workers {
                group.addTask { await self.launch(index: index) }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let failure = results.compactMap { result -> ScoringError? in
            if case .failure(let error) = result { return error }
            return nil
        }.first
        let workers = results.compactMap { try? $0.get() }.map { (index: $0.0, worker: $0.1) }
        let metadata = results.lazy.compactMap { try? $0.get().2 }.first
        if let failure {
            for (_, worker) in workers { await worker.stop() }
            lock.withLock {
                lastError = failure.description
                slots = Array(repeating: .stopped, count: configuration.workers)
                stopped = true
            }
            throw failure
        }
        lock.withLock {
            for (index, worker) in workers { slots[index] = .idle(worker) }
            self.metadata = metadata
            started = true
        }
        logger.info("scoring module ready", metadata: ["module": "\(module)", "workers": "\(workers.count)"])
        Task { await self.watchIdleWorkers() }
    }

    /// Replaces idle workers whose process died, twice a second, until stopped.
    private func watchIdleWorkers() async {
        while !lock.withLock({ stopped }) {
            try? await Task.sleep(for: .milliseconds(500))
            let dead = lock.withLock { () -> [(Int, ScoringWorker)] in
                guard !stopped else { return [] }
                return slots.enumerated().compactMap { index, slot in
                    guard case .idle(let worker) = slot, !worker.isAlive else { return nil }
                    slots[index] = .starting
                    return (index, worker)
                }
            }
            for (index, worker) in dead { replaceIdle(index: index, worker: worker) }
        }
    }

    /// Replaces a worker found dead while idle (its slot is already `starting`).
    private func replaceIdle(index: Int, worker: ScoringWorker) {
        replace(index: index, worker: worker, reason: "worker \(index) exited while idle", crashed: true)
    }

    /// The worker processes that run (or are starting), for the state store: a runtime
    /// started after a crash ends them (`LeftoverProcesses`).
    public var workerProcesses: [WorkerProcess] {
        lock.withLock { processes.map { WorkerProcess(pid: $0.key, startTicks: $0.value) } }.sorted { $0.pid < $1.pid }
    }

    /// How many workers died on their own (crashed while scoring or idle) since the start;
    /// a new version whose worker crashes within its rollback window is rolled back.
    public var crashCount: Int { lock.withLock { crashes } }

    /// Serves the requests already handed to it, then stops: a version replaced by a newer
    /// one drains this way, so no request in flight is lost. Waits at most twice the
    /// request timeout (a wait for a worker plus a `run`).
    public func retire() async {
        let deadline = ContinuousClock.now + configuration.requestTimeout * 2
        while ContinuousClock.now < deadline, lock.withLock({ !waiters.isEmpty || slots.contains(where: \.isBusy) }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await stop()
    }

    /// True once every worker finished `init()` and none is being replaced.
    public var isReady: Bool {
        lock.withLock {
            started && !stopped && slots.allSatisfy(\.isUp)
        }
    }

    /// The model's inputs and outputs as its workers declared them (none for a `score.py`);
    /// nil until started.
    public var modelMetadata: ModelMetadata? { lock.withLock { metadata } }

    /// Request counters and latency percentiles, for health reports.
    public var inferenceStats: InferenceStats { statistics.snapshot }

    /// How many workers were replaced after a crash or a timeout.
    public var restartCount: Int { lock.withLock { restarts } }

    /// The last start failure or crash, for health reports.
    public var lastFailure: String? { lock.withLock { lastError } }

    /// Scores one request and returns the body of its answer: `run`'s JSON result (or the
    /// body of an HTTP response `run` returned). See `respond`.
    public func score(_ body: [UInt8], headers: [(name: String, value: String)] = []) async throws(ScoringError) -> [UInt8] {
        try await respond(body, headers: headers).body
    }

    /// Scores one request and returns the answer to send. `run` gets the body, or its JSON
    /// members by name, and `headers` when it declares `request_headers`, or the request
    /// itself with `@rawhttp`, as azmlinfsrv calls it. `requestID` (the `x-request-id` answered)
    /// goes into the request's `InferenceEvent`.
    public func respond(
        _ body: [UInt8], headers: [(name: String, value: String)] = [], requestID: String? = nil
    ) async throws(ScoringError) -> ScoringResponse {
        try await answer(body, requestID: requestID) { worker, timeout in
            await worker.score(body, headers: headers, timeout: timeout)
        }
    }

    /// Answers one Open Inference (V2) infer request: the V2 response as JSON, or
    /// `ScoringError.badRequest` naming the input that does not fit the model.
    public func infer(_ body: [UInt8], requestID: String? = nil) async throws(ScoringError) -> [UInt8] {
        let model = inferenceHead
        return try await answer(body, requestID: requestID) { worker, timeout in
            await worker.infer(body, model: model, timeout: timeout)
        }.body
    }

    private func answer(
        _ body: [UInt8], requestID: String?, _ exchange: (ScoringWorker, Duration) async -> ScoringWorker.Outcome
    ) async throws(ScoringError) -> ScoringResponse {
        let startedAt = ContinuousClock.now
        let result = await scoreOutcome(exchange)
        let latency = ContinuousClock.now - startedAt
        switch result {
        case .success(let response):
            statistics.record(latency: latency, failed: response.status >= 500)
        case .failure(let error):
            statistics.record(latency: latency, failed: error.httpStatus >= 500)
        }
        if let onRequest {
            let output: String
            let status: Int
            switch result {
            case .success(let response):
                output = String(decoding: response.body, as: UTF8.self)
                status = response.status
            case .failure(let error):
                output = String(decoding: ScoringErrorBody(error).json, as: UTF8.self)
                status = error.httpStatus
            }
            onRequest(
                InferenceEvent(
                    module: module, input: String(decoding: body, as: UTF8.self), output: output,
                    latency: latency, status: status, requestID: requestID))
        }
        return try result.get()
    }

    /// Stops every worker; later requests get 503.
    public func stop() async {
        let (workers, pending) = lock.withLock { () -> ([ScoringWorker], [Waiter]) in
            stopped = true
            let workers = slots.compactMap { slot -> ScoringWorker? in
                switch slot {
                case .idle(let worker), .busy(let worker): worker
                case .starting, .stopped: nil
                }
            }
            slots = slots.map { _ in .stopped }
            let pending = Array(waiters)
            waiters.removeAll()
            return (workers, pending)
        }
        for waiter in pending { waiter.resume(returning: nil) }
        for worker in workers { worker.terminate() }
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask { await worker.stop() }
            }
        }
        logger.info("scoring module stopped", metadata: ["module": "\(module)"])
    }

    private func scoreOutcome(
        _ exchange: (ScoringWorker, Duration) async -> ScoringWorker.Outcome
    ) async -> Result<ScoringResponse, ScoringError> {
        let checkout: (Int, ScoringWorker)
        switch await checkOut() {
        case .success(let slot): checkout = slot
        case .failure(let error): return .failure(error)
        }
        let (index, worker) = checkout
        let timeout = configuration.requestTimeout
        let outcome = await exchange(worker, timeout)
        switch outcome {
        case .output(let response):
            checkIn(index: index, worker: worker)
            return .success(response)
        case .raised(let json):
            checkIn(index: index, worker: worker)
            let exception = PythonException(json: json)
            return .failure(.runRaised(module: module, type: exception.type, message: exception.message))
        case .rejected(let rejection):
            checkIn(index: index, worker: worker)
            switch rejection.status {
            case 415: return .failure(.unsupportedMediaType(module: module, reason: rejection.message))
            case 500: return .failure(.undecodableBody(module: module, reason: rejection.message))
            default: return .failure(.badRequest(module: module, reason: rejection.message))
            }
        case .died(let timedOut):
            let failure: ScoringError =
                timedOut
                ? .timedOut(module: module, after: timeout)
                : .workerRestarting(module: module, detail: "worker \(index) exited while scoring")
            replace(index: index, worker: worker, reason: failure.description, crashed: !timedOut)
            return .failure(failure)
        }
    }

    /// Takes an idle worker, or waits up to the request timeout for one to come free.
    private func checkOut() async -> Result<(Int, ScoringWorker), ScoringError> {
        enum Decision {
            case take(Int, ScoringWorker)
            case fail(ScoringError)
            case wait
        }
        var dead: [(Int, ScoringWorker)] = []
        let decision = lock.withLock { () -> Decision in
            guard started, !stopped else { return .fail(.notReady(module: module)) }
            var anyComing = false
            for (index, slot) in slots.enumerated() {
                switch slot {
                case .idle(let worker):
                    guard worker.isAlive else {
                        slots[index] = .starting
                        dead.append((index, worker))
                        anyComing = true
                        continue
                    }
                    slots[index] = .busy(worker)
                    return .take(index, worker)
                case .busy, .starting: anyComing = true
                case .stopped: break
                }
            }
            return anyComing ? .wait : .fail(.workerRestarting(module: module, detail: "no worker is up"))
        }
        for (index, worker) in dead { replaceIdle(index: index, worker: worker) }
        switch decision {
        case .take(let index, let worker): return .success((index, worker))
        case .fail(let error): return .failure(error)
        case .wait: break
        }
        let timeout = configuration.requestTimeout
        let granted = await withCheckedContinuation { (continuation: CheckedContinuation<(Int, ScoringWorker)?, Never>) in
            let id = lock.withLock { () -> Int? in
                // A worker may have come free between the two critical sections.
                for (index, slot) in slots.enumerated() {
                    if case .idle(let worker) = slot, worker.isAlive {
                        slots[index] = .busy(worker)
                        continuation.resume(returning: (index, worker))
                        return nil
                    }
                }
                nextWaiterID += 1
                waiters.append(Waiter(id: nextWaiterID, continuation: continuation))
                return nextWaiterID
            }
            guard let id else { return }
            let timer = eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                let expired = lock.withLock { () -> Waiter? in
                    guard let position = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return waiters.remove(at: position)
                }
                expired?.resume(returning: nil)
            }
            let waiting = lock.withLock { () -> Bool in
                guard let position = waiters.firstIndex(where: { $0.id == id }) else { return false }
                waiters[position].timer = timer
                return true
            }
            if !waiting { timer.cancel() }
        }
        guard let granted else {
            return .failure(
                lock.withLock { () -> ScoringError in
                    if stopped { return .notReady(module: module) }
                    return slots.contains(where: \.isUp)
                        ? .busy(module: module, waited: timeout)
                        : .workerRestarting(module: module, detail: lastError ?? "no worker is up")
                })
        }
        return .success(granted)
    }

    /// Hands a free worker to the oldest waiting request, or marks it idle.
    private func checkIn(index: Int, worker: ScoringWorker) {
        let waiter = lock.withLock { () -> Waiter? in
            guard !stopped else { return nil }
            if !waiters.isEmpty {
                let waiter = waiters.removeFirst()
                slots[index] = .busy(worker)
                return waiter
            }
            slots[index] = .idle(worker)
            return nil
        }
        waiter?.resume(returning: (index, worker))
    }

    /// Reaps a dead worker and starts a new one in its slot, retrying with a pause
    /// while the new one fails to start.
    private func replace(index: Int, worker: ScoringWorker, reason: String, crashed: Bool) {
        let proceed = lock.withLock { () -> Bool in
            guard !stopped else { return false }
            slots[index] = .starting
            restarts += 1
            if crashed { crashes += 1 }
            lastError = reason
            return true
        }
        logger.warning("replacing scoring worker", metadata: ["module": "\(module)", "worker": "\(index)", "reason": "\(reason)"])
        Task {
            await worker.stop(grace: .milliseconds(200))
            guard proceed else { return }
            while !lock.withLock({ stopped }) {
                switch await launch(index: index) {
                case .success(let (_, replacement, _)):
                    let stillWanted = lock.withLock { !stopped }
                    if stillWanted {
                        checkIn(index: index, worker: replacement)
                    } else {
                        await replacement.stop()
                    }
                    return
                case .failure(let error):
                    failWaitersWithoutWorkers(error.description)
                    logger.error("scoring worker failed to restart", metadata: ["module": "\(module)", "error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Records why a replacement failed; when no worker is up any more, the requests
    /// waiting for one get 503 with that reason rather than waiting out their timeout.
    private func failWaitersWithoutWorkers(_ reason: String) {
        let failed = lock.withLock { () -> [Waiter] in
            lastError = reason
            guard !slots.contains(where: \.isUp) else { return [] }
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in failed { waiter.resume(returning: nil) }
    }

    /// Starts worker `index` and waits for its `init()`.
    private func launch(index: Int) async -> Result<(Int, ScoringWorker, ModelMetadata), ScoringError> {
        do throws(ScoringError) {
            let worker = try await ScoringWorker(configuration: configuration, index: index, eventLoop: eventLoop) {
                [weak self] pid in self?.processEnded(pid)
            }
            if let ticks = worker.startTicks {
                lock.withLock { processes[worker.pid] = ticks }
                onWorkersChanged?()
            }
            let metadata = try await worker.waitUntilReady(module: module, timeout: configuration.startTimeout)
            return .success((index, worker, ModelMetadata(json: metadata)))
        } catch {
            return .failure(error)
        }
    }

    private func processEnded(_ pid: pid_t) {
        lock.withLock { _ = processes.removeValue(forKey: pid) }
        onWorkersChanged?()
    }
}
