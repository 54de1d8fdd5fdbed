import ArgumentParser
import FleetHub
import Foundation

/// `fleethub rollout`: watch and steer the staged rollout of a deployment version.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Watch and steer staged rollouts (a manifest's rollout: section); `fleethub serve` advances them.", discussion: "EXAMPLES:\n  fleethub rollout status iris-prod\n  fleethub rollout pause iris-prod\n  fleethub rollout abort iris-prod",
        subcommands: [Status.self, Steer<PauseName>.self, Steer<ResumeName>.self, Steer<AbortName>.self, Steer<PromoteName>.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the latest rollout of a deployment: state, wave, devices per state, each criterion against its threshold.", discussion: "EXAMPLES:\n  fleethub rollout status iris-prod\n  fleethub rollout status iris-prod --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The deployment name.") var name: String

        func run() throws {
            let status = try RolloutStore(workspace: workspace.open()).status(deployment: name)
            if output.json { return try Output.json(status) }
            RolloutOutput.print(status)
        }
    }

    /// One of pause, resume, abort, promote.
    struct Steer<Name: SteerName>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(
                commandName: Name.command.rawValue, abstract: Name.abstract,
                discussion: "EXAMPLES:\n  fleethub rollout \(Name.command.rawValue) iris-prod")
        }
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The deployment name.") var name: String

        func run() async throws {
            let opened = try workspace.open()
            let (rollout, change) = try RolloutStore(workspace: opened).apply(Name.command, deployment: name)
            print("rollout of \(name) version \(rollout.version): \(rollout.state.rawValue)\(rollout.events.last.map { " (\($0.message))" } ?? "")")
            try await Publishing.publish(change, workspace: opened)
        }
    }
}

protocol SteerName {
    static var command: RolloutStore.Command { get }
    static var abstract: String { get }
}

enum PauseName: SteerName {
    static let command = RolloutStore.Command.pause
    static let abstract = "Stop advancing the rollout; the devices keep what they run."
}

enum ResumeName: SteerName {
    static let command = RolloutStore.Command.resume
    static let abstract = "Continue a paused rollout."
}

enum AbortName: SteerName {
    static let command = RolloutStore.Command.abort
    static let abstract = "End the rollout and put its updated devices back on the previous version."
}

enum PromoteName: SteerName {
    static let command = RolloutStore.Command.promote
    static let abstract = "Skip the remaining waves: every targeted device gets the version now."
}

enum RolloutOutput {
    static func started(_ rollout: Rollout?) {
        guard let rollout else { return }
        Swift.print(
            "rollout of \(rollout.deployment) version \(rollout.version): wave 1 of \(rollout.waveSizes.count) to \(rollout.currentWaveDevices.count) of \(rollout.devices.count) device(s) (\(rollout.currentWaveDevices.joined(separator: ", "))); `fleethub serve` advances it, `fleethub rollout status \(rollout.deployment)` shows it")
    }

    static func print(_ status: RolloutStatus) {
        Swift.print("deployment: \(status.deployment)  version \(status.version) (previous: \(status.previousVersion.map(String.init) ?? "none"))")
        Swift.print("state: \(status.state.rawValue)  wave \(status.wave) of \(status.waves)  updated \(status.updated) of \(status.targeted)")
        if let reason = status.reason { Swift.print("reason: \(reason)") }
        if let waiting = status.waiting { Swift.print("waiting: \(waiting)") }
        Swift.print(RolloutDeviceState.allCases.map { "\($0.rawValue): \(status.devices[$0.rawValue] ?? 0)" }.joined(separator: "  "))
        for criterion in status.criteria {
            Swift.print("criterion \(criterion.name): \(criterion.ok ? "ok" : "FAILED")  \(criterion.detail)  (threshold \(criterion.threshold))")
        }
        if let shadow = status.shadow {
            Swift.print("shadow: \(shadow.samples) samples, agreement \(shadow.agreement.map { String(format: "%.4f", $0) } ?? "-"), \(shadow.errors) errors, p50 \(shadow.p50Ms.map { String(format: "%.2f ms", $0) } ?? "-"), p99 \(shadow.p99Ms.map { String(format: "%.2f ms", $0) } ?? "-"), promoted on \(shadow.promotedDevices) device(s)")
        }
        Output.table(
            ["DEVICE", "WAVE", "STATE", "MODULES", "ERROR"],
            status.perDevice.map { [$0.deviceId, "\($0.wave)", $0.state.rawValue, $0.modules.joined(separator: ", "), $0.error ?? ""] })
        for event in status.events.suffix(10) { Swift.print("\(Output.date(event.at))  \(event.message)") }
    }
}
