import Foundation

/// The modules the local API knows about, kept up to date by the supervisor: each
/// running module by name, with its `ScoringHost` when it is a `python-scoring`
/// module. A scoring module that failed and is not serving stays listed with its last
/// error (503); a name that is in neither gets 404.
public final class LocalModules: @unchecked Sendable {
    private let lock = NSLock()
    private var modules: [String: ScoringHost?] = [:]
    private var failures: [String: String] = [:]

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

    /// Whether `name` is a running module, and its scoring host if it has one.
    func lookUp(_ name: String) -> ScoringHost?? {
        lock.withLock { modules[name] }
    }

    /// Every module by name, sorted.
    var all: [(name: String, scoring: ScoringHost?)] {
        lock.withLock { modules.map { (name: $0.key, scoring: $0.value) } }.sorted { $0.name < $1.name }
    }
}
