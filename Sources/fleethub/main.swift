import ArgumentParser
import FleetHub

struct FleetHubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fleethub", version: fleetHubVersion)
}

FleetHubCommand.main()
