import EdgeRuntime
import FleetCore
import Testing

@Suite struct PlanTests {
    static func digest(_ character: Character) -> ContentDigest {
        ContentDigest("sha256:" + String(repeating: character, count: 64))!
    }

    static func module(_ name: String, _ digest: Character, order: Int = 0, status: DesiredStatus = .running) -> ModuleSpec {
        ModuleSpec(
            name: name, kind: .process,
            bundle: BundleReference(digest: Self.digest(digest), size: 10, url: "http://hub/v1/bundles/\(digest)"),
            desiredStatus: status, startupOrder: order)
    }

    @Test func freshDeviceDownloadsVerifiesUnpacksAndStartsInStartupOrder() {
        let a = Self.module("a", "a", order: 2)
        let b = Self.module("b", "b", order: 1)
        let steps = plan(desired: [a, b], current: DeviceState())
        #expect(steps == [
            .download(b.bundle), .verify(b.bundle), .unpack(b.bundle.digest),
            .download(a.bundle), .verify(a.bundle), .unpack(a.bundle.digest),
            .start(b), .start(a), .removeUnusedBundles,
        ])
    }

    @Test func deviceInDesiredStateGetsNoSteps() {
        let a = Self.module("a", "a")
        let current = DeviceState(
            modules: ["a": InstalledModule(spec: a, isRunning: true)], cachedBundles: [a.bundle.digest],
            unpackedBundles: [a.bundle.digest])
        #expect(plan(desired: [a], current: current).isEmpty)
    }

    @Test func updatePreparesTheNewVersionBeforeSwitching() {
        let old = Self.module("a", "a")
        let new = Self.module("a", "b")
        let current = DeviceState(modules: ["a": InstalledModule(spec: old, isRunning: true)], unpackedBundles: [old.bundle.digest])
        #expect(plan(desired: [new], current: current) == [
            .download(new.bundle), .verify(new.bundle), .unpack(new.bundle.digest),
            .switchVersion(from: old, to: new), .removeUnusedBundles,
        ])
    }

    @Test func cachedBundleIsVerifiedButNotDownloadedAndUnpackedOneIsReused() {
        let a = Self.module("a", "a")
        let b = Self.module("b", "b")
        let current = DeviceState(cachedBundles: [a.bundle.digest], unpackedBundles: [b.bundle.digest])
        #expect(plan(desired: [a, b], current: current) == [
            .verify(a.bundle), .unpack(a.bundle.digest), .start(a), .start(b), .removeUnusedBundles,
        ])
    }

    @Test func twoModulesSharingABundlePrepareItOnce() {
        let a = Self.module("a", "a")
        let b = Self.module("b", "a")
        let steps = plan(desired: [a, b], current: DeviceState())
        #expect(steps.filter { if case .download = $0 { true } else { false } }.count == 1)
        #expect(steps.suffix(3) == [.start(a), .start(b), .removeUnusedBundles])
    }

    @Test func settingsChangeSwitchesWithoutPreparing() {
        let old = Self.module("a", "a")
        var new = old
        new.env = ["LOG_LEVEL": "debug"]
        let current = DeviceState(modules: ["a": InstalledModule(spec: old, isRunning: true)], unpackedBundles: [old.bundle.digest])
        #expect(plan(desired: [new], current: current) == [.switchVersion(from: old, to: new), .removeUnusedBundles])
    }

    @Test func modulesNoLongerDesiredAreRemovedInDescendingStartupOrder() {
        let a = Self.module("a", "a", order: 1)
        let b = Self.module("b", "b", order: 5)
        let current = DeviceState(modules: [
            "a": InstalledModule(spec: a, isRunning: true), "b": InstalledModule(spec: b, isRunning: true),
        ])
        #expect(plan(desired: [], current: current) == [.remove(module: "b"), .remove(module: "a"), .removeUnusedBundles])
    }

    @Test func stoppedModuleIsStoppedOnlyWhileRunning() {
        let running = Self.module("a", "a")
        let stopped = Self.module("a", "a", status: .stopped)
        let unpacked: Set = [running.bundle.digest]
        #expect(plan(desired: [stopped], current: DeviceState(
            modules: ["a": InstalledModule(spec: running, isRunning: true)], unpackedBundles: unpacked))
            == [.stop(module: "a"), .removeUnusedBundles])
        #expect(plan(desired: [stopped], current: DeviceState(
            modules: ["a": InstalledModule(spec: stopped, isRunning: false)], unpackedBundles: unpacked)).isEmpty)
    }

    @Test func moduleThatIsNotRunningIsStartedAgain() {
        let a = Self.module("a", "a")
        let current = DeviceState(modules: ["a": InstalledModule(spec: a, isRunning: false)], unpackedBundles: [a.bundle.digest])
        #expect(plan(desired: [a], current: current) == [.start(a), .removeUnusedBundles])
    }

    @Test(arguments: [ModuleKind.onnx, .mlflow])
    func noCodeModulesGetTheirEnvironmentPreparedLikeScoreScripts(_ kind: ModuleKind) {
        var a = Self.module("a", "a")
        a.kind = kind
        #expect(plan(desired: [a], current: DeviceState()) == [
            .download(a.bundle), .verify(a.bundle), .unpack(a.bundle.digest), .prepareEnvironment(a.bundle.digest),
            .start(a), .removeUnusedBundles,
        ])
    }

    @Test func pythonScoringModulesGetTheirEnvironmentPreparedOnce() {
        var a = Self.module("a", "a")
        a.kind = .pythonScoring
        #expect(plan(desired: [a], current: DeviceState()) == [
            .download(a.bundle), .verify(a.bundle), .unpack(a.bundle.digest), .prepareEnvironment(a.bundle.digest),
            .start(a), .removeUnusedBundles,
        ])
        let ready = DeviceState(unpackedBundles: [a.bundle.digest], readyEnvironments: [a.bundle.digest])
        #expect(plan(desired: [a], current: ready) == [.start(a), .removeUnusedBundles])
    }

    @Test func rolledBackVersionIsNotTriedAgain() {
        let good = Self.module("a", "a")
        let bad = Self.module("a", "b")
        let current = DeviceState(
            modules: ["a": InstalledModule(spec: good, isRunning: true, rejectedDigest: bad.bundle.digest)],
            unpackedBundles: [good.bundle.digest, bad.bundle.digest])
        #expect(plan(desired: [bad], current: current).isEmpty)
    }
}

extension PlanTests {
    static func scoring(_ name: String, _ digest: Character, shadow: Character? = nil) -> ModuleSpec {
        var spec = Self.module(name, digest)
        spec.kind = .pythonScoring
        spec.shadow = shadow.map {
            ShadowSpec(
                bundle: BundleReference(digest: Self.digest($0), size: 10, url: "http://hub/v1/bundles/\($0)"), sampleRate: 0.25)
        }
        return spec
    }

    @Test func aShadowBundleIsPreparedWithTheModuleAndStartsWithIt() {
        let a = Self.scoring("a", "a", shadow: "c")
        let shadow = a.shadow!.bundle
        #expect(plan(desired: [a], current: DeviceState()) == [
            .download(a.bundle), .verify(a.bundle), .unpack(a.bundle.digest), .prepareEnvironment(a.bundle.digest),
            .download(shadow), .verify(shadow), .unpack(shadow.digest), .prepareEnvironment(shadow.digest),
            .start(a), .removeUnusedBundles,
        ])
    }

    @Test func changingOnlyTheShadowLeavesTheLiveVersionRunning() {
        let old = Self.scoring("a", "a", shadow: "c")
        var new = Self.scoring("a", "a", shadow: "d")
        new.shadow?.sampleRate = 1
        let shadow = new.shadow!.bundle
        let current = DeviceState(
            modules: ["a": InstalledModule(spec: old, isRunning: true)],
            unpackedBundles: [old.bundle.digest, old.shadow!.bundle.digest],
            readyEnvironments: [old.bundle.digest, old.shadow!.bundle.digest])
        #expect(plan(desired: [new], current: current) == [
            .download(shadow), .verify(shadow), .unpack(shadow.digest), .prepareEnvironment(shadow.digest),
            .setShadow(new), .removeUnusedBundles,
        ])
        // Taking the shadow away, or adding one, is a shadow change too.
        let withoutShadow = Self.scoring("a", "a")
        #expect(plan(desired: [withoutShadow], current: current) == [.setShadow(withoutShadow), .removeUnusedBundles])
        let bare = DeviceState(
            modules: ["a": InstalledModule(spec: withoutShadow, isRunning: true)], unpackedBundles: current.unpackedBundles,
            readyEnvironments: current.readyEnvironments)
        #expect(plan(desired: [old], current: bare) == [.setShadow(old), .removeUnusedBundles])
    }

    @Test func aNewLiveVersionSwitchesAndBringsItsShadow() {
        let old = Self.scoring("a", "a", shadow: "c")
        let new = Self.scoring("a", "b", shadow: "c")
        let ready: Set = [old.bundle.digest, new.bundle.digest, old.shadow!.bundle.digest]
        let current = DeviceState(
            modules: ["a": InstalledModule(spec: old, isRunning: true)], unpackedBundles: ready, readyEnvironments: ready)
        #expect(plan(desired: [new], current: current) == [.switchVersion(from: old, to: new), .removeUnusedBundles])
    }

    @Test func aShadowWhoseBundleIsNotPreparedIsTriedAgainWithoutTouchingTheLiveVersion() {
        let a = Self.scoring("a", "a", shadow: "c")
        let shadow = a.shadow!.bundle
        let current = DeviceState(
            modules: ["a": InstalledModule(spec: a, isRunning: true)], unpackedBundles: [a.bundle.digest],
            readyEnvironments: [a.bundle.digest])
        #expect(plan(desired: [a], current: current) == [
            .download(shadow), .verify(shadow), .unpack(shadow.digest), .prepareEnvironment(shadow.digest),
            .setShadow(a), .removeUnusedBundles,
        ])
        let prepared = DeviceState(
            modules: current.modules, unpackedBundles: [a.bundle.digest, shadow.digest],
            readyEnvironments: [a.bundle.digest, shadow.digest])
        #expect(plan(desired: [a], current: prepared).isEmpty)
    }

    @Test func processModulesGetNoShadowSteps() {
        var a = Self.module("a", "a")
        a.shadow = Self.scoring("a", "a", shadow: "c").shadow
        #expect(plan(desired: [a], current: DeviceState()) == [
            .download(a.bundle), .verify(a.bundle), .unpack(a.bundle.digest), .start(a), .removeUnusedBundles,
        ])
    }
}
