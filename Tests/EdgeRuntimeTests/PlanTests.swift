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
