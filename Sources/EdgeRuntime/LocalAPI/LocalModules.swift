import FleetCore
import Foundation

/// The modules the local API knows about, kept up to date by the supervisor: each
/// running module by name, with its `ScoringHost` when it is a `python-scoring`
/// module, and its `ShadowEvaluator` when it has a shadow. A scoring module that
/// failed and is not serving stays listed with its last error (503); a name that is
/// in neither gets 404.
public final class LocalModules: @unchecked Sendable {
    private let lock = NSLock()
    private var modules: [String: ScoringHost?] = [:]
    private var failures: [String: String] = [:]
    private var shadows: [String: ShadowEvaluator] = [:]

    public init() {}

    /// Adds or replaces a module; `scoring` is nil for `process` modules.
    public func set(_ name: String, scoring: ScoringHost?) {
        lock.withLock {
            modules[name] = .some(scoring)
            failures.removeValue(forKey: name)
        }
    }

    /// Adds or replaces a scoring module under its configured name.
    public func set(_ host: ScoringHost) {
        set(host.module, scoring: host)
    }

    /// Forgets a module (it was stopped or removed from the desired state).
    public func remove(_ name: String) {
        lock.withLock {
            modules.removeValue(forKey: name)
            failures.removeValue(forKey: name)
        }
    }

    /// Marks a scoring module as failed (its start failed, or it stayed unhealthy) until it
    /// is set again or removed; `lastError` is what the local API answers for it.
    public func setFailed(_ name: String, lastError: String) {
        lock.withLock {
            modules.removeValue(forKey: name)
            failures[name] = lastError
        }
    }

    /// Why module `name` failed, when it is failed rather than running.
    func failure(of name: String) -> String? {
        lock.withLock { failures[name] }
    }

    /// Every failed module by name, sorted, with its last error.
    var failed: [(name: String, lastError: String)] {
        lock.withLock { failures.map { (name: $0.key, lastError: $0.value) } }.sorted { $0.name < $1.name }
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

    /// Every module by name, sorted.
    var all: [(name: String, scoring: ScoringHost?)] {
        lock.withLock { modules.map { (name: $0.key, scoring: $0.value) } }.sorted { $0.name < $1.name }
    }
}
