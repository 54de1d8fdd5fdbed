import FleetCore
import Foundation
import Testing

/// `ProcessSpawner.run`, which every helper program (pip, python, openssl, test tools)
/// goes through, and `ExitStatus`, which decodes how any child ended.
struct ProcessRunTests {
    let environment = ProcessInfo.processInfo.environment

    @Test func bothStreamsTogetherOrApartAndTheExitCode() throws {
        let script = "echo out; echo err >&2; exit 3"
        let merged = try ProcessSpawner.run(["/bin/sh", "-c", script], environment: environment)
        #expect(merged.output == "out\nerr\n" && merged.errors.isEmpty)
        #expect(merged.status == ExitStatus(waitStatus: 3 << 8))
        #expect(merged.status.code == 3 && merged.status.signal == nil && !merged.status.succeeded)
        #expect(merged.status.description == "exited with code 3")

        let apart = try ProcessSpawner.run(["/bin/sh", "-c", script], environment: environment, separateErrors: true)
        #expect(apart.output == "out\n" && apart.errors == "err\n")
    }

    /// A child that fills its error pipe while the parent reads its output must not hang.
    @Test(.timeLimit(.minutes(1))) func largeOutputOnBothStreamsIsReadWhole() async throws {
        let script = "yes e | head -c 1000000 >&2; yes o | head -c 500000"
        let completed = try await ProcessSpawner.run(["/bin/sh", "-c", script], environment: environment, separateErrors: true)
        #expect(completed.status.succeeded)
        #expect(completed.errors.count == 1_000_000 && completed.output.count == 500_000)
    }

    /// A pip that hangs: the timeout kills the program and what it started (its group).
    @Test(.timeLimit(.minutes(1))) func aTimeoutKillsTheWholeGroupAndSaysSo() async throws {
        let started = ContinuousClock.now
        let completed = try await ProcessSpawner.run(
            ["/bin/sh", "-c", "sleep 60 & echo $!; wait"], environment: environment, timeout: .milliseconds(500))
        #expect(completed.timedOut && completed.status.signal == SIGKILL)
        #expect(ContinuousClock.now - started < .seconds(10))
        let child = try #require(Int32(completed.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await Self.ends(child), "the group's other process is gone")
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheTaskKillsTheGroup() async throws {
        let environment = self.environment
        let run = Task {
            try await ProcessSpawner.run(
                ["/bin/sh", "-c", "sleep 60 & echo $!; wait"], environment: environment)
        }
        try await Task.sleep(for: .milliseconds(300))
        run.cancel()
        let completed = try await run.value
        #expect(!completed.timedOut && completed.status.signal == SIGKILL)
        let child = try #require(Int32(completed.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await Self.ends(child), "the group's other process is gone")
    }

    /// Whether `pid` is gone (or a zombie) within 2 s.
    static func ends(_ pid: pid_t) async -> Bool {
        for _ in 0..<100 {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if stat.isEmpty || stat.contains(") Z ") { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test func aSignalIsReportedAsAShellDoes() throws {
        let killed = try ProcessSpawner.run(["/bin/sh", "-c", "kill -9 $$"], environment: environment)
        #expect(killed.status.signal == 9 && killed.status.code == 137)
        #expect(killed.status.description == "killed by signal 9")
    }

    @Test func aProgramThatCannotStartIsATypedError() {
        #expect(throws: SpawnError.self) {
            try ProcessSpawner.run(["/nonexistent/program"], environment: environment)
        }
    }

    @Test func noOtherDescriptorReachesTheProgram() throws {
        let open = try ProcessSpawner.run(["/bin/sh", "-c", "ls /proc/self/fd"], environment: environment)
        // 0, 1, 2 and the descriptor `ls` opens to read the folder.
        #expect(open.output.split(separator: "\n").compactMap { Int($0) }.filter { $0 > 3 }.isEmpty, "\(open.output)")
    }
}
