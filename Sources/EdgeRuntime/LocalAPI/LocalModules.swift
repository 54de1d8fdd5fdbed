import Foundation

/// The modules the local API knows about, kept up to date by the supervisor: each
/// running module by name, with its `ScoringHost` when it is a `python-scoring`
/// module. A name that is not here gets 404.
public final class LocalModules: @unchecked Sendable {
    private let lock = NSLock()
    private var modules: [String: ScoringHost?] = [:]

    public init() {}

    /// Adds or replaces a module; `scoring` is nil for `process` modules.
    public func set(_ name: String, scoring: ScoringHost?) {
        lock.withLock { modules[name] = .some(scoring) }
    }

    /// Adds or replaces a scoring module under its configured name.
    public func set(_ host: ScoringHost) {
        set(host.module, scoring: host)
    }

    /// Forgets a module (it was stopped or removed from the desired state).
    public func remove(_ name: String) {
        _ = lock.withLock { modules.removeValue(forKey: name) }
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
