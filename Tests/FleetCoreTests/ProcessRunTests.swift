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
