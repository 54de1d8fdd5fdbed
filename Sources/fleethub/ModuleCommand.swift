import ArgumentParser
import FleetCore
import FleetHub
import Foundation

struct ModuleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "module", abstract: "Module bundles.", discussion: "EXAMPLES:\n  fleethub module package --name iris-scorer --model iris --entry score.py --source examples/iris\n  fleethub module list\n  fleethub module delete iris-scorer:1", subcommands: [Package.self, List.self, Show.self, Delete.self])

    struct Package: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Package a model and its scoring script (or any program) into a deterministic bundle.", discussion: "EXAMPLES:\n  fleethub module package --name iris-scorer --model iris:1 --entry score.py --source examples/iris --requirements examples/iris/requirements.txt\n  fleethub module package --name site-agent --kind process --command \"/bin/sh agent.sh\" --source examples/site-agent")
        @OptionGroup var workspace: WorkspaceOptions
        @Option(help: "The module name.") var name: String
        @Option(help: "python-scoring (default), process, or onnx / mlflow (what --model without --entry makes).")
        var kind: ModuleKind = .pythonScoring
        @Option(help: "The registered model NAME[:VERSION] to ship under model/ (the latest when VERSION is omitted).") var model: String?
        @Option(help: "The scoring script, relative to --source; none to serve an ONNX or MLflow model as it is.")
        var entry: String?
        @Option(help: "For --kind process: the program and its arguments.") var command: String?
        @Option(help: "A folder whose files go to the bundle's root.") var source: String?
        @Option(help: "A pip requirements file.") var requirements: String?
        @Flag(name: .customLong("vendor-wheels"), help: "Download the requirements as wheels into the bundle.")
        var vendorWheels = false

        func run() throws {
            let request = PackageRequest(
                name: name, kind: kind, model: try model.map { try VersionedName(parsing: $0) }, entry: entry,
                command: try command.map(CommandLineSplitter.split), source: source.map { URL(fileURLWithPath: $0) },
                requirements: requirements.map { URL(fileURLWithPath: $0) }, vendorWheels: vendorWheels)
            let progress = TerminalProgress(label: "packaging \(name)")
            defer { progress.finish() }
            let module = try ModuleRegistry(workspace: workspace.open()).package(request, progress: progress.update)
            progress.finish()
            print("\(module.reference) \(module.digest)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List packaged module versions.", discussion: "EXAMPLES:\n  fleethub module list\n  fleethub module list --name iris-scorer --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only this module.") var name: String?

        func run() throws {
            let modules = try ModuleRegistry(workspace: workspace.open()).list(name: name)
            if output.json { return try Output.json(modules) }
            Output.table(
                ["MODULE", "KIND", "BYTES", "CREATED", "DIGEST"],
                modules.map { [$0.reference, $0.kind.rawValue, "\($0.size)", $0.createdAt.formatted(.iso8601), "\($0.digest)"] })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a module version (the latest when V is omitted).", discussion: "EXAMPLES:\n  fleethub module show iris-scorer\n  fleethub module show iris-scorer:2 --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "NAME[:VERSION]") var reference: String

        func run() throws {
            let module = try ModuleRegistry(workspace: workspace.open()).show(VersionedName(parsing: reference))
            if output.json { return try Output.json(module) }
            print("module: \(module.reference)")
            print("kind: \(module.kind.rawValue)")
            print("digest: \(module.digest)")
            print("size: \(module.size) bytes")
            if let entry = module.manifest.entry { print("entry: \(entry)") }
            if let command = module.manifest.command { print("command: \(command.joined(separator: " "))") }
            for model in Set(module.manifest.models.map { "\($0.name):\($0.version)" }).sorted() { print("model: \(model)") }
            if !module.manifest.requirements.isEmpty {
                print("requirements: \(module.manifest.requirements.joined(separator: ", "))")
            }
            if let pins = module.manifest.pins {
                print("pinned:")
                for pin in pins { print("  \(pin.name)==\(pin.version)  sha256:\(pin.sha256)") }
            }
            print("files:")
            for file in module.manifest.files { print("  \(file.path)  \(file.size) bytes") }
        }
    }
}

extension ModuleCommand {
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a packaged module version that no deployment uses.",
            discussion: """
                The bundle stays in the workspace's blob store, so devices can still roll back to it.

                EXAMPLES:
                  fleethub module delete iris-scorer:1
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "NAME:VERSION") var reference: String

        func run() throws {
            try ModuleRegistry(workspace: workspace.open()).delete(VersionedName(parsingExact: reference))
            print("deleted \(reference)")
        }
    }
}

extension ModuleKind: ExpressibleByArgument {}

/// Splits `--command "python3 helper.py --flag 'a b'"` into arguments, honouring quotes.
enum CommandLineSplitter {
    static func split(_ text: String) throws -> [String] {
        var arguments: [String] = []
        var current = ""
        var quote: Character?
        var inArgument = false
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inArgument = true
            } else if character.isWhitespace {
                if inArgument { arguments.append(current) }
                current = ""
                inArgument = false
            } else {
                current.append(character)
                inArgument = true
            }
        }
        guard quote == nil else { throw ValidationError("--command has an unterminated quote: \(text)") }
        if inArgument { arguments.append(current) }
        return arguments
    }
}
