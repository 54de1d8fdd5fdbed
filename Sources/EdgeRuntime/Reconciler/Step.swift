import FleetCore

/// One thing the reconciler does to bring the device closer to its desired state.
/// `plan(desired:current:)` lists them; the `Reconciler` carries them out in order.
public enum Step: Equatable, Sendable, CustomStringConvertible {
    /// Fetch a bundle into the cache (resuming a partial download).
    case download(BundleReference)
    /// Check the cached bundle's size and digest.
    case verify(BundleReference)
    /// Unpack a verified bundle and check every file against its module.json.
    case unpack(ContentDigest)
    /// Create (or reuse) the Python environment of an unpacked `python-scoring` bundle.
    case prepareEnvironment(ContentDigest)
    /// Stop a module and keep it stopped.
    case stop(module: String)
    /// Stop a module that is no longer desired and forget it.
    case remove(module: String)
    /// Start a module that is not running.
    case start(ModuleSpec)
    /// Replace a running module by another version or settings; the old one runs until then.
    case switchVersion(from: ModuleSpec, to: ModuleSpec)
    /// Start, replace or stop a running module's shadow to match `spec.shadow`, leaving
    /// the live version running as it is.
    case setShadow(ModuleSpec)
    /// Go back to the last known good spec after `from` failed; planned by the reconciler
    /// when a switched module does not stay up, never by `plan`.
    case rollBack(from: ModuleSpec, to: ModuleSpec, reason: String)
    /// Delete cached and unpacked bundles no module uses, desires or may roll back to.
    case removeUnusedBundles

    /// The module this step is about, if one.
    public var module: String? {
        switch self {
        case .stop(let name), .remove(let name): name
        case .start(let spec), .switchVersion(_, let spec), .setShadow(let spec), .rollBack(_, let spec, _): spec.name
        case .download, .verify, .unpack, .prepareEnvironment, .removeUnusedBundles: nil
        }
    }

    public var description: String {
        switch self {
        case .download(let bundle): "download \(bundle.digest)"
        case .verify(let bundle): "verify \(bundle.digest)"
        case .unpack(let digest): "unpack \(digest)"
        case .prepareEnvironment(let digest): "prepare the Python environment of \(digest)"
        case .stop(let name): "stop \(name)"
        case .remove(let name): "remove \(name)"
        case .start(let spec): "start \(spec.name) (\(spec.bundle.digest))"
        case .switchVersion(let from, let to): "switch \(to.name) from \(from.bundle.digest) to \(to.bundle.digest)"
        case .setShadow(let spec): "set the shadow of \(spec.name) to \(spec.shadow.map { "\($0.bundle.digest)" } ?? "none")"
        case .rollBack(let from, let to, _): "roll back \(to.name) from \(from.bundle.digest) to \(to.bundle.digest)"
        case .removeUnusedBundles: "remove unused bundles"
        }
    }
}
