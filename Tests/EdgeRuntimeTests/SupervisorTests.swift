@testable import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

/// The supervisor with real child processes running shell scripts.
@Suite struct SupervisorTests {
    let directory: TemporaryDirectory
    let dataDirectory: DataDirectory
    let store: StateStore
    let supervisor: Supervisor

    init() throws {
        directory = try TemporaryDirectory(prefix: "supervisor")
        dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        store = try StateStore(url: dataDirectory.database)
        let settings = RuntimeSettings(
            backoff: BackoffSchedule(initial: .milliseconds(50), maximum: .milliseconds(200), resetAfter: .seconds(10)),
            stopGracePeriod: .milliseconds(500))
        supervisor = Supervisor(store: store, dataDirectory: dataDirectory, settings: settings, logger: Logger(label: "test"))
    }

    func launch(_ name: String, script: String, policy: RestartPolicy = .always, command: [String]? = nil) throws -> ModuleLaunch {
        let folder = dataDirectory.modules.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try script.write(to: folder.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
        return ModuleLaunch(
            name: name, digest: ContentDigest(of: Data(script.utf8)), folder: folder,
            command: command ?? ["/bin/sh", "run.sh"], environment: ["PATH": "/usr/bin:/bin", "GREETING": "hello"],
            restartPolicy: policy)
    }

    func status(_ name: String) async -> ModuleStatus? {
        await supervisor.statuses().first { $0.name == name }
    }

    @Test func runsAModuleInItsOwnProcessGroupWithItsOutputInTheLog() async throws {
        await supervisor.run(try launch("echo", script: "echo \"$GREETING from $(pwd)\"; exec sleep 30"))
        let running = try #require(await status("echo"))
        let pid = try #require(running.pid)
        #expect(running.status == .running)
        #expect(ProcessTable.entry(pid: pid)?.processGroup == pid)
        #expect(await eventually { (try? ModuleLogReader(dataDirectory: dataDirectory, module: "echo").tail(1)) == ["hello from \(dataDirectory.modules.appendingPathComponent("echo").resolvingSymlinksInPath().path)"] })
        #expect(try store.moduleStatuses().first?.pid == pid)
        await supervisor.stop("echo")
        #expect(!isAlive(pid))
        #expect(await status("echo")?.status == .stopped)
    }

    @Test func crashLoopBacksOffWithCappedDelays() async throws {
        let started = ContinuousClock.now
        await supervisor.run(try launch("crash", script: "exit 3"))
        #expect(await eventually { (await status("crash")?.restarts ?? 0) >= 4 })
        // The first four restarts wait 50 + 100 + 200 + 200 ms (capped): a module that
        // exits at once is not restarted in a hot loop.
        #expect(ContinuousClock.now - started >= .milliseconds(550))
        let crash = try #require(await status("crash"))
        #expect(crash.lastExitCode == 3)
        #expect(crash.lastError == "exited with code 3")
        await supervisor.stop("crash")
    }

    @Test func restartPoliciesDecideWhetherAnExitIsRestarted() async throws {
        await supervisor.run(try launch("clean", script: "exit 0", policy: .onFailure))
        await supervisor.run(try launch("never", script: "exit 1", policy: .never))
        await supervisor.run(try launch("failing", script: "exit 1", policy: .onFailure))
        #expect(await eventually {
            let clean = await status("clean")?.status
            let never = await status("never")?.status
            return clean == .stopped && never == .failed
        })
        #expect(await eventually { (await status("failing")?.restarts ?? 0) >= 2 })
        #expect(await status("clean")?.restarts == 0)
        #expect(await status("never")?.restarts == 0)
        await supervisor.stopAll()
    }

    @Test func stopKillsTheWholeGroupAfterTheGracePeriodWhenSIGTERMIsIgnored() async throws {
        await supervisor.run(try launch("stubborn", script: "trap '' TERM; sleep 60 & while true; do sleep 0.1; done"))
        let pid = try #require(await status("stubborn")?.pid)
        #expect(await eventually { ProcessTable.members(ofGroup: pid).count >= 2 })
        let started = ContinuousClock.now
        await supervisor.stop("stubborn")
        #expect(ContinuousClock.now - started >= .milliseconds(500))
        #expect(await eventually(timeout: .seconds(2)) { ProcessTable.members(ofGroup: pid).isEmpty })
    }

    @Test func aMissingCommandIsReportedAndRetriedWithBackoff() async throws {
        await supervisor.run(try launch("missing", script: "", command: ["./does-not-exist"]))
        #expect(await eventually { (await status("missing")?.restarts ?? 0) >= 1 })
        let missing = try #require(await status("missing"))
        #expect(missing.lastError?.contains("cannot start ./does-not-exist") == true)
        #expect(missing.pid == nil)
        await supervisor.stop("missing")
    }

    @Test func leftoverProcessesOfAKilledRuntimeAreEnded() async throws {
        await supervisor.run(try launch("orphan", script: "sleep 60 & exec sleep 60"))
        let recorded = try store.moduleStatuses()
        let group = try #require(recorded.first?.processGroup)
        #expect(await eventually { ProcessTable.members(ofGroup: group).count == 2 })
        let ended = await LeftoverProcesses.end(recorded.flatMap(\.trackedProcesses), grace: .seconds(1), logger: Logger(label: "test"))
        #expect(ended == 2)
        #expect(await eventually { ProcessTable.members(ofGroup: group).isEmpty })
        await supervisor.stop("orphan")
    }
}
