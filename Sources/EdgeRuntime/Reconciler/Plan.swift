import FleetCore

/// The steps that turn `current` into `desired`, without touching anything.
///
/// Bundles are prepared first (download, verify, unpack, and the Python environment of
/// `python-scoring` modules) while the old versions keep
/// running; then modules that must stop are stopped in descending startup order; then
/// modules start or switch in ascending startup order; unused bundles go last. A
/// device already in the desired state gets no steps, and a module that rolled back
/// from a bundle is not switched to that bundle again by the same desired modules.
///
/// The shadow bundle of a `python-scoring` module is prepared like its own bundle. A
/// change of only the shadow is a `setShadow`, never a switch, so the live version keeps
/// running; so is a running module whose shadow bundle is not prepared yet (an earlier
/// download or environment failed), which tries the shadow again.
public func plan(desired: [ModuleSpec], current: DeviceState) -> [Step] {
    let ordered = desired.sorted { ($0.startupOrder, $0.name) < ($1.startupOrder, $1.name) }
    let wanted = Set(desired.map(\.name))
    var prepare: [Step] = []
    var stops: [(order: Int, name: String, steps: [Step])] = []
    var starts: [Step] = []
    var prepared = Set<ContentDigest>()
    var environments = Set<ContentDigest>()

    /// The steps that make `bundle` ready to run, each planned once per bundle.
    func preparation(of bundle: BundleReference, kind: ModuleKind) -> [Step] {
        var steps: [Step] = []
        let digest = bundle.digest
        if !current.unpackedBundles.contains(digest), prepared.insert(digest).inserted {
            if !current.cachedBundles.contains(digest) { steps.append(.download(bundle)) }
            steps += [.verify(bundle), .unpack(digest)]
        }
        if kind.isScoring, !current.readyEnvironments.contains(digest), environments.insert(digest).inserted {
            steps.append(.prepareEnvironment(digest))
        }
        return steps
    }

    /// The steps that prepare `spec`'s shadow bundle; none for modules that cannot have one.
    func shadowPreparation(of spec: ModuleSpec) -> [Step] {
        guard spec.kind.isScoring, let shadow = spec.shadow else { return [] }
        return preparation(of: shadow.bundle, kind: .pythonScoring)
    }

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
            let running = installed?.isRunning == true ? installed?.spec : nil
            if running == spec {
                let shadow = shadowPreparation(of: spec)
                if !shadow.isEmpty {
                    prepare += shadow
                    starts.append(.setShadow(spec))
                }
                continue
            }
            prepare += preparation(of: spec.bundle, kind: spec.kind)
            prepare += shadowPreparation(of: spec)
            if let running, running.withoutShadow == spec.withoutShadow {
                starts.append(.setShadow(spec))
            } else if let running {
                starts.append(.switchVersion(from: running, to: spec))
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

extension ModuleSpec {
    /// The spec with its shadow taken out: what decides whether the live version must switch.
    var withoutShadow: ModuleSpec {
        var spec = self
        spec.shadow = nil
        return spec
    }
}
