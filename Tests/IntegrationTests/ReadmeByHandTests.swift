import FleetCore
import FleetTesting
import Foundation
import Testing

/// README's "The workflow by hand", run as written: the block is taken out of
/// README.md and run line by line with bash, so the README and what works cannot drift
/// apart. Its fixed names and paths are made real in namespaces of the test's own: a
/// mount namespace where `hub.example` and `broker.example` are 127.0.0.1 and
/// `/etc/mosquitto` and `/var/lib/edge-runtime` are empty tmpfs, and a PID namespace
/// that ends every process the block started (`serve &`, the broker, the device) with
/// it. The network is the machine's (pip needs the package index), so the block's ports
/// 8080, 8765 and 8883 must be free; they are below the range tests take free ports from.
@Suite(.serialized, .enabled(if: Fixtures.shouldRun(needing: "mosquitto") && Fixtures.shouldRun(needing: "unshare")))
struct ReadmeByHandTests {
    static let root = ReadmeWorkflow.root

    @Test func theWorkflowByHandRunsAsWritten() async throws {
        let directory = try TemporaryDirectory(prefix: "readme-by-hand")
        let work = directory.file("work")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        for folder in ["examples", "manifests"] {
            try FileManager.default.copyItem(
                atPath: Self.root.appendingPathComponent(folder).path, toPath: "\(work)/\(folder)")
        }
        try "127.0.0.1 localhost hub.example broker.example\n::1 localhost\n"
            .write(toFile: directory.file("hosts"), atomically: true, encoding: .utf8)
        let log = directory.file("workflow.log")
        let script = directory.file("workflow.sh")
        try """
            exec >\(log) 2>&1
            set -euo pipefail
            mount --bind \(directory.file("hosts")) /etc/hosts
            for folder in /etc/mosquitto /var/lib/edge-runtime; do
              mkdir -p "$folder" && mount -t tmpfs tmpfs "$folder"
            done
            cd \(work)
            set -x
            \(try ReadmeWorkflow.block())
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let bin = URL(fileURLWithPath: Fixtures.builtExecutable("fleethub")).deletingLastPathComponent().path
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "\(bin):\(environment["PATH"] ?? "/usr/bin:/bin")"
        environment["FLEETHUB_HOME"] = nil
        for port in [8080, 8765, 8883] {
            #expect(!Fixtures.isListening(port: port), "port \(port), which the README's workflow uses, is taken on this machine")
        }
        let started = ContinuousClock.now
        let completed = try await ProcessSpawner.run(
            ["timeout", "--kill-after", "10", "900", "unshare", "--mount", "--pid", "--fork", "--mount-proc", "bash", script],
            environment: environment, directory: work)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        print("README workflow by hand: \(ContinuousClock.now - started)")
        #expect(completed.status.succeeded, "the README's workflow failed (\(completed.status)); its last lines:\n\(output.suffix(6000))")
        // What the block's commands printed (not bash's `+ command` echo): a prediction,
        // the V2 metadata, the checks, the fleet with the device online, the rollback.
        let printed = output.split(separator: "\n").filter { !$0.hasPrefix("+") }
        for expected in ["\"predictions\"", "\"platform\"", "[pass]", "rolled iris-prod back"] {
            #expect(printed.contains { $0.contains(expected) }, "no \(expected) in the workflow's output:\n\(output.suffix(6000))")
        }
        #expect(printed.contains { $0.contains("gw-001") && $0.contains("online") }, "\(output.suffix(6000))")
        #expect(!output.contains("[FAIL]"), "\(output.suffix(6000))")
    }
}
