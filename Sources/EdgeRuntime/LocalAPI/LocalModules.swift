import FleetCore
import Foundation

/// The modules the local API knows about, kept up to date by the supervisor: each
/// running module by name, with its `ScoringHost` when it is a `python-scoring`
/// module, and its `ShadowEvaluator` when it has a shadow. A scoring module that is
/// still starting, or failed and is not serving, stays listed (503, with its last
/// error when it failed); a name that is in none gets 404.
///
/// While a scoring module switches versions the old version stays here until the new
/// one is ready; then `set` swaps them in one step and the old one becomes the
/// module's fallback until the new one has proved itself (`fallback(of:)`).
public final class LocalModules: @unchecked Sendable {
    private let lock = NSLock()
    private var modules: [String: ScoringHost?] = [:]
    private var failures: [String: String] = [:]
    private var starting: Set<String> = []
    private var fallbacks: [String: ScoringHost] = [:]
    private var shadows: [String: ShadowEvaluator] = [:]

    public init() {}

    /// Adds or replaces a module; `scoring` is nil for `process` modules.
    public func set(_ name: String, scoring: ScoringHost?) {
        lock.withLock {
            modules[name] = .some(scoring)
            failures.removeValue(forKey: name)
            starting.remove(name)
        }
    }

    /// Adds or replaces a scoring module under its configured name.
    public func set(_ host: ScoringHost) {
        set(host.module, scoring: host)
    }

    /// Marks a scoring module as starting (503 until it is set) unless a version of it
    /// serves or it is marked failed, which it stays until it is set.
    public func setStarting(_ name: String) {
        lock.withLock {
            if modules[name] == nil && failures[name] == nil { starting.insert(name) }
        }
    }

    /// The version a scoring module falls back to while its new version proves itself
    /// (nil: none), e.g. when a worker of the new version dies while scoring.
    public func setFallback(_ name: String, _ host: ScoringHost?) {
        lock.withLock { fallbacks[name] = host }
    }

    /// Forgets a module (it was stopped or removed from the desired state).
    public func remove(_ name: String) {
        lock.withLock {
            modules.removeValue(forKey: name)
            failures.removeValue(forKey: name)
            starting.remove(name)
            fallbacks.removeValue(forKey: name)
        }
    }

    /// Marks a scoring module as failed (its start failed, or it stayed unhealthy) until it
    /// is set again or removed; `lastError` is what the local API answers for it.
    public func setFailed(_ name: String, lastError: String) {
        lock.withLock {
            modules.removeValue(forKey: name)
            starting.remove(name)
            fallbacks.removeValue(forKey: name)
            failures[name] = lastError
        }
    }

    /// Why module `name` failed, when it is failed rather than running.
    func failure(of name: String) -> String? {
        lock.withLock { failures[name] }
    }

    /// Whether module `name` is starting and has no version serving yet.
    func isStarting(_ name: String) -> Bool {
        lock.withLock { starting.contains(name) }
    }

    /// Every failed module by name, sorted, with its last error.
    var failed: [(name: String, lastError: String)] {
        lock.withLock { failures.map { (name: $0.key, lastError: $0.value) } }.sorted { $0.name < $1.name }
    }

    /// Every module that is starting with no version serving, sorted.
    var startingModules: [String] {
        lock.withLock { starting }.sorted()
    }

    /// Adds or replaces the shadow of the module `evaluator.module`.
    public func setShadow(_ evaluator: ShadowEvaluator) {
        lock.withLock { shadows[evaluator.module] = evaluator }
    }

    /// Forgets `evaluator`, unless another shadow replaced it already.
    public func removeShadow(_ evaluator: ShadowEvaluator) {
        lock.withLock {
            if shadows[evaluator.module] === evaluator { shadows.removeValue(forKey: evaluator.module) }
        }
    }

    /// The shadow that the score route mirrors `name`'s requests to, if any.
    public func shadow(of name: String) -> ShadowEvaluator? {
        lock.withLock { shadows[name] }
    }

    /// Every shadow's record by live module name, for health reports.
    public var shadowHealth: [String: ShadowHealth] {
        lock.withLock { shadows }.mapValues(\.health)
    }

    /// Whether `name` is a running module, and its scoring host if it has one.
    func lookUp(_ name: String) -> ScoringHost?? {
        lock.withLock { modules[name] }
    }

    /// Runs a scoring request on `host`, the version of module `name` the caller found.
    /// When that version cannot answer because it is being replaced — it stopped after a
    /// switch, or a worker of a new version died while scoring — the request runs once
    /// more on the version that serves `name` now, or on its fallback; so a switch or a
    /// rollback costs no request.
    func serve<Answer: Sendable>(
        _ name: String, on host: ScoringHost, _ request: @Sendable (ScoringHost) async throws(ScoringError) -> Answer
    ) async throws(ScoringError) -> Answer {
        do {
            return try await request(host)
        } catch {
            switch error {
            case .notReady, .workerRestarting: break
            default: throw error
            }
            let other = lock.withLock { () -> ScoringHost? in
                if let current = modules[name] ?? nil, current !== host { return current }
                if let fallback = fallbacks[name], fallback !== host { return fallback }
                return nil
            }
            guard let other else { throw error }
            return try await request(other)
        }
    }

    /// Every module by name, sorted.
    var all: [(name: String, scoring: ScoringHost?)] {
        lock.withLock { modules.map { (name: $0.key, scoring: $0.value) } }.sorted { $0.name < $1.name }
    }
}
