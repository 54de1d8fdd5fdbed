import ArgumentParser
import EdgeRuntime

struct EdgeRuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edge-runtime", version: runtimeVersion)
}

EdgeRuntimeCommand.main()
