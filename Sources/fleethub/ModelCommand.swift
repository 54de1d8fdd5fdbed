import ArgumentParser
import FleetHub
import Foundation

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "The model registry.", discussion: "EXAMPLES:\n  fleethub model register --name iris --path model/iris.onnx --tag stage=prod\n  fleethub model list --tag stage=prod\n  fleethub model tag iris --tag stage=canary",
        subcommands: [Register.self, List.self, Show.self, Tag.self, Download.self, Delete.self])

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register files as the next version of a model.", discussion: "EXAMPLES:\n  fleethub model register --name iris --path model/iris.onnx --tag stage=prod\n  fleethub model register --name detector --path ./weights --description \"retrained on March data\"\n  fleethub model register --name iris --path model/iris.onnx --baseline train.csv")
        @OptionGroup var workspace: WorkspaceOptions
        @Option(help: "The model name.") var name: String
        @Option(help: "A file or folder (a folder keeps its tree); repeatable.") var path: [String] = []
        @Option(help: "A tag key=value; repeatable.") var tag: [String] = []
        @Option(help: "A description.") var description: String?
        @Option(help: "The training inputs (CSV with a header, or .npy rows × features), summarised per feature for drift.")
        var baseline: String?

        func run() throws {
            guard !path.isEmpty else { throw ValidationError("give at least one --path") }
            let model = try ModelRegistry(workspace: workspace.open()).register(
                name: name, paths: path, tags: TagParser.parse(tag), description: description, baseline: baseline)
            print(model.reference)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List model versions.", discussion: "EXAMPLES:\n  fleethub model list\n  fleethub model list --name iris --tag stage=prod --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only this model.") var name: String?
        @Option(help: "Only versions with this tag key=value; repeatable.") var tag: [String] = []

        func run() throws {
            let models = try ModelRegistry(workspace: workspace.open()).list(name: name, tags: TagParser.parse(tag))
            if output.json { return try Output.json(models) }
            Output.table(
                ["MODEL", "FILES", "BYTES", "CREATED", "TAGS"],
                models.map { model in
                    [model.reference, "\(model.files.count)", "\(model.files.reduce(0) { $0 + $1.size })",
                     model.createdAt.formatted(.iso8601), Output.tags(model.tags)]
                })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a model version (the latest when V is omitted).", discussion: "EXAMPLES:\n  fleethub model show iris\n  fleethub model show iris:2 --json")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "NAME[:VERSION]") var reference: String

        func run() throws {
            let model = try ModelRegistry(workspace: workspace.open()).show(VersionedName(parsing: reference))
            if output.json { return try Output.json(model) }
            print("model: \(model.reference)")
            if let description = model.description { print("description: \(description)") }
            print("created: \(model.createdAt.formatted(.iso8601))")
            print("tags: \(Output.tags(model.tags))")
            if let flavour = model.flavour {
                print("flavour: \(flavour.rawValue) (served without a score.py: module package --model \(model.reference))")
            }
            if let signature = model.signature {
                print("signature:")
                for input in signature.inputs { print("  input   \(input.summary)") }
                for output in signature.outputs { print("  output  \(output.summary)") }
            } else if model.flavour != nil {
                print("signature: unknown (the hub could not read it; `module package` says why)")
            }
            if let baseline = model.baseline {
                print("baseline: \(baseline.rows) rows")
                for feature in baseline.features { print("  feature \(DriftOutput.baseline(feature))") }
            }
            print("files:")
            for file in model.files { print("  \(file.path)  \(file.size) bytes  \(file.digest)") }
        }
    }

    struct Tag: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or remove tags of a model version (the latest when VERSION is omitted).",
            discussion: """
                EXAMPLES:
                  fleethub model tag iris:3 --tag stage=prod
                  fleethub model tag iris --tag stage=canary --untag owner
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "NAME[:VERSION]") var reference: String
        @Option(help: "A tag key=value to set; repeatable.") var tag: [String] = []
        @Option(help: "A tag key to remove; repeatable.") var untag: [String] = []

        func run() throws {
            guard !tag.isEmpty || !untag.isEmpty else { throw ValidationError("give --tag key=value or --untag key") }
            let model = try ModelRegistry(workspace: workspace.open()).tag(
                VersionedName(parsing: reference), set: TagParser.parse(tag), remove: untag)
            print("\(model.reference) tags: \(Output.tags(model.tags))")
        }
    }

    struct Download: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model version's files into a folder (the latest when VERSION is omitted).",
            discussion: """
                EXAMPLES:
                  fleethub model download iris:2 --to ./iris-2
                  fleethub model download iris --to ./iris-latest
                """)
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "NAME[:VERSION]") var reference: String
        @Option(help: "The folder to write to.") var to: String

        func run() throws {
            let model = try ModelRegistry(workspace: workspace.open()).download(
                VersionedName(parsing: reference), to: URL(fileURLWithPath: to))
            print("wrote \(model.files.count) file(s) of \(model.reference) to \(to)")
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a model version not used by any deployment.", discussion: "EXAMPLES:\n  fleethub model delete iris:1")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "NAME:VERSION") var reference: String

        func run() throws {
            try ModelRegistry(workspace: workspace.open()).delete(VersionedName(parsingExact: reference))
            print("deleted \(reference)")
        }
    }
}
