import ArgumentParser
import FleetHub
import Foundation

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Files for the MQTT broker.", discussion: "EXAMPLES:\n  fleethub broker files --out /etc/mosquitto/fleet", subcommands: [Files.self])

    struct Files: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write mosquitto's password and ACL files for every device and the hub; rerun after device add/remove.", discussion: "EXAMPLES:\n  fleethub broker files --out /etc/mosquitto/fleet\n  fleethub broker files --out ./broker --workspace ./hub")
        @OptionGroup var workspace: WorkspaceOptions
        @Option(help: "The folder to write 'passwords' and 'acl' into.") var out: String

        func run() throws {
            let written = try BrokerFiles(workspace: workspace.open()).write(to: URL(fileURLWithPath: out))
            print("wrote \(written.passwordFile) and \(written.aclFile); add to mosquitto.conf and reload the broker:")
            print(written.configLines)
        }
    }
}
