import FleetCore

/// The steps that turn `current` into `desired`, without touching anything.
///
/// Bundles are prepared first (download, verify, unpack, and the Python environment of
/// `python-scoring` modules) while the old versions keep
/// running; then modules that must stop are stopped in descending startup order; then
/// modules start or switch in ascending startup order; unused bundles go last. A
/// device already in the desired state gets no steps, and a module that rolled back
/// from a bundle is not switched to that bundle again by the same desired modules.
public func plan(desired: [ModuleSpec], current: DeviceState) -> [Step] {
    let ordered = desired.sorted { ($0.startupOrder, $0.name) < ($1.startupOrder, $1.name) }
    let wanted = Set(desired.map(\.name))
    var prepare: [Step] = []
    var stops: [(order: Int, name: String, steps: [Step])] = []
    var starts: [Step] = []
    var prepared = Set<ContentDigest>()
    var environments = Set<ContentDigest>()

    for spec in ordered {
        let installed = current.modules[spec.name]
        if let installed, installed.rejectedDigest == spec.bundle.digest, installed.spec.bundle.digest != spec.bundle.digest {
            continue
        }
        switch spec.desiredStatus {
        case .stopped:
            if let installed, installed.isRunning {
                stops.append((spec.startupOrder, spec.name, [.stop(module: spec.name)]))
            }
        case .running:
            if let installed, installed.spec == spec, installed.isRunning { continue }
            let digest = spec.bundle.digest
            if !current.unpackedBundles.contains(digest), prepared.insert(digest).inserted {
                if !current.cachedBundles.contains(digest) { prepare.append(.download(spec.bundle)) }
                prepare += [.verify(spec.bundle), .unpack(digest)]
            }
            if spec.kind == .pythonScoring, !current.readyEnvironments.contains(digest), environments.insert(digest).inserted {
                prepare.append(.prepareEnvironment(digest))
            }
            if let installed, installed.isRunning {
                starts.append(.switchVersion(from: installed.spec, to: spec))
            } else {
                starts.append(.start(spec))
            }
        }
    }
    for (name, installed) in current.modules where !wanted.contains(name) {
        stops.append((installed.spec.startupOrder, name, [.remove(module: name)]))
    }
    let stopSteps = stops.sorted { ($0.order, $0.name) > ($1.order, $1.name) }.flatMap(\.steps)
    let steps = prepare + stopSteps + starts
    return steps.isEmpty ? [] : steps + [.removeUnusedBundles]
}
