import ArgumentParser
import EdgeRuntime
import FleetCore
import Foundation
import Logging

@main
struct EdgeRuntimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-runtime",
        abstract: "The device daemon of the fleet: applies the hub's signed desired state and keeps modules running.", discussion: "EXAMPLES:\n  edge-runtime run --config /etc/edge-runtime/config.yaml\n  edge-runtime check --config gw-001.yaml\n  edge-runtime status --config gw-001.yaml",
        version: runtimeVersion,
        subcommands: [Run.self, Status.self, Logs.self, Check.self])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The device config written by `fleethub device add --out`.")
    var config = "/etc/edge-runtime/config.yaml"

    /// The config; a bad one fails naming the file and what is wrong (exit code 1).
    func load() throws -> DeviceConfig {
        try DeviceConfig.load(from: config)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon until SIGTERM or SIGINT.", discussion: "EXAMPLES:\n  edge-runtime run --config /etc/edge-runtime/config.yaml\n  edge-runtime run --config gw-001.yaml --log-level debug --rollback-window 60")

    @OptionGroup var options: ConfigOption
    @Option(help: "Seconds an updated module must stay up before it counts as good.")
    var rollbackWindow: Double = 30
    @Option(help: "Seconds a module gets to exit after SIGTERM before SIGKILL.")
    var stopGrace: Double = 10
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        NetworkThreads.limitToOne()
        let config = try options.load()
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var settings = RuntimeSettings()
        settings.rollbackWindow = .milliseconds(Int(rollbackWindow * 1000))
        settings.stopGracePeriod = .milliseconds(Int(stopGrace * 1000))
        let daemon = EdgeRuntimeDaemon(config: config, settings: settings, logger: Logger(label: "edge-runtime"))
        try await ShutdownSignals.cancelling { try await daemon.run() }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether the daemon runs, the desired and applied revision, and each module.",
        discussion: """
            Exit codes: 0 status shown; 1 the config cannot be read; \(notRunYet.rawValue) the daemon has never run with this config's data dir.

            EXAMPLES:
              edge-runtime status --config /etc/edge-runtime/config.yaml
              edge-runtime status --config gw-001.yaml --json
            """)

    /// The daemon has not run yet on this data dir: nothing to show.
    static let notRunYet = ExitCode(3)

    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let config = try options.load()
        let dataDirectory = DataDirectory(config: config)
        guard FileManager.default.fileExists(atPath: dataDirectory.database.path) else {
            FileHandle.standardError.write(Data("""
                edge-runtime has not run yet with the data dir \(dataDirectory.root.path) (no state database there); \
                start it with `edge-runtime run --config \(options.config)`

                """.utf8))
            throw Self.notRunYet
        }
        var status = try StateStore(url: dataDirectory.database).status()
        status.daemonPid = DataDirectoryLock.holder(of: dataDirectory)
        status.telemetry = TelemetryBuffer.recordedHealth(at: dataDirectory.telemetryBuffer.path)
        if json {
            print(String(decoding: try FleetJSON.prettyEncoder().encode(status), as: UTF8.self))
        } else {
            print(StatusText(status).render())
        }
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a module's stdout and stderr.", discussion: "EXAMPLES:\n  edge-runtime logs iris --config gw-001.yaml\n  edge-runtime logs agent --follow --tail 20 --config gw-001.yaml")

    @OptionGroup var options: ConfigOption
    @Argument(help: "The module's name.") var module: String
    @Flag(name: .shortAndLong, help: "Keep printing new lines.") var follow = false
    @Option(name: .shortAndLong, help: "How many lines to show first.") var tail = 100

    func run() async throws {
        let reader = ModuleLogReader(dataDirectory: DataDirectory(config: try options.load()), module: module)
        for line in try reader.tail(tail) { print(line) }
        if follow {
            try await ShutdownSignals.cancelling {
                await reader.follow { FileHandle.standardOutput.write($0) }
            }
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Diagnose this device's setup; each check says how to fix a failure.", discussion: "EXAMPLES:\n  edge-runtime check --config /etc/edge-runtime/config.yaml")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let results = await DeviceCheck(configPath: options.config).run()
        for result in results {
            print("[\(result.passed ? "pass" : "FAIL")] \(result.name): \(result.detail)")
            if let fix = result.fix, !result.passed { print("       fix: \(fix)") }
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}

