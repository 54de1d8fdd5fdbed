import FleetCore
import Foundation

/// The files, model and requirements one bundle is made of, gathered and checked
/// before anything is written.
struct BundleContents {
    /// The request's kind, or `onnx` / `mlflow` for a no-code module.
    var kind: ModuleKind
    var files: [BundleFile]
    var entry: String?
    var model: ModelVersion?
    var modelEntries: [ModelFileEntry]
    var requirements: [String]
    /// The requirements file's index options, for devices that install from an index.
    var indexOptions: [String]?
    /// Every requirement line, to name one that cannot be pinned.
    var requirementLines: [RequirementLine]
    /// A scratch folder (downloaded wheels) to delete once the bundle is written.
    var scratch: URL?
    /// The requirements file to resolve and the vendored wheels to resolve it against.
    var resolution: (file: URL, wheels: URL?)?

    static func gather(_ request: PackageRequest, models: ModelRegistry) throws -> BundleContents {
        var files: [BundleFile] = []
        var entry: String?
        var kind = request.kind
        var generated: [String] = []
        switch request.kind {
        case .pythonScoring where request.entry == nil && request.model != nil, .onnx, .mlflow:
            let noCode = try noCodeModel(request, models: models)
            kind = noCode.kind
            entry = noCode.entry
            generated = noCode.requirements
            if let source = request.source {
                files += try FileCollector.files(in: source).map { BundleFile(path: $0, source: source.appendingPathComponent($0)) }
            }
        case .pythonScoring:
            guard let requested = request.entry else {
                throw RegistryError.invalidModule("a python-scoring module needs --entry (e.g. score.py)")
            }
            guard request.model != nil else {
                throw RegistryError.invalidModule("a python-scoring module needs --model NAME:VERSION")
            }
            if request.command != nil {
                throw RegistryError.invalidModule("--command is for --kind process modules only")
            }
            entry = try addSource(request.source, entry: requested, to: &files)
        case .process:
            guard let command = request.command, !command.isEmpty else {
                throw RegistryError.invalidModule("a process module needs --command \"PROGRAM ARGS…\"")
            }
            if let requested = request.entry {
                entry = try addSource(request.source, entry: requested, to: &files)
            } else if let source = request.source {
                files += try FileCollector.files(in: source).map {
                    BundleFile(path: $0, source: source.appendingPathComponent($0))
                }
            }
        }

        var model: ModelVersion?
        var modelEntries: [ModelFileEntry] = []
        if let reference = request.model {
            let found = try models.show(reference)
            model = found
            for file in found.files {
                let path = "model/\(file.path)"
                files.append(BundleFile(path: path, source: try models.workspace.blobs.file(for: file.digest)))
                modelEntries.append(
                    ModelFileEntry(name: found.name, version: found.version, path: path, sha256: file.digest.hex))
            }
        }

        if kind == .pythonScoring {
            try ModuleChecks.compilePython(files)
        }
        if let command = request.command {
            try ModuleChecks.checkCommand(command, files: files)
        }

        var requirements = generated
        var lines = generated.enumerated().map {
            RequirementLine(source: "the requirements of model \(request.model?.description ?? "")", number: $0.offset + 1, text: $0.element)
        }
        var indexOptions: [String] = []
        if let file = request.requirements {
            let read = try readRequirements(file)
            requirements += read.requirements
            indexOptions = read.indexOptions
            lines += read.lines
        }
        guard !request.vendorWheels || request.requirements != nil || !generated.isEmpty else {
            throw RegistryError.invalidModule("--vendor-wheels needs --requirements FILE")
        }
        var scratch: URL?
        // The file pip reads: the one given, or what packaging pinned plus the given
        // file (its pip options steer the download and the resolution too).
        var pipFile = request.requirements
        if !generated.isEmpty {
            let folder = try models.workspace.blobs.temporaryURL()
            scratch = folder
            let file = folder.appendingPathComponent("requirements.txt")
            let lines = generated + (request.requirements.map { ["-r \($0.path)"] } ?? [])
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
            } catch {
                throw RegistryError.unwritable(file.path, reason: error.localizedDescription)
            }
            pipFile = file
        }
        var wheels: URL?
        if request.vendorWheels, let pipFile {
            let folder = try scratch ?? models.workspace.blobs.temporaryURL()
            scratch = folder
            let downloaded = folder.appendingPathComponent("wheels")
            for wheel in try WheelDownloader.download(requirements: pipFile, into: downloaded) {
                files.append(BundleFile(path: "wheels/\(wheel)", source: downloaded.appendingPathComponent(wheel)))
            }
            wheels = downloaded
        }
        return BundleContents(
            kind: kind, files: files, entry: entry, model: model, modelEntries: modelEntries,
            requirements: requirements, indexOptions: wheels == nil && !indexOptions.isEmpty ? indexOptions : nil,
            requirementLines: lines, scratch: scratch,
            resolution: requirements.isEmpty ? nil : pipFile.map { ($0, wheels) })
    }

    /// Resolves the requirements as the device will (`ModuleChecks.resolve`) and returns
    /// their pins, nil without requirements; a few seconds of pip, so only for inputs not
    /// packaged before.
    func resolveRequirements() throws -> [RequirementPin]? {
        guard let resolution else { return nil }
        return try ModuleChecks.resolve(requirements: resolution.file, wheels: resolution.wheels, lines: requirementLines)
    }

    /// A no-code module's kind, entry (the model file or folder inside the bundle) and the
    /// requirements its model needs: onnxruntime and numpy pinned to the versions that
    /// loaded the ONNX file, or the MLflow model's own pip requirements.
    private static func noCodeModel(
        _ request: PackageRequest, models: ModelRegistry
    ) throws -> (kind: ModuleKind, entry: String, requirements: [String]) {
        guard let reference = request.model else {
            throw RegistryError.invalidModule("a \(request.kind.rawValue) module needs --model NAME:VERSION")
        }
        if request.command != nil { throw RegistryError.invalidModule("--command is for --kind process modules only") }
        if request.entry != nil {
            throw RegistryError.invalidModule("a \(request.kind.rawValue) module has no --entry: the runtime serves its model")
        }
        let model = try models.show(reference)
        guard let (flavour, path) = FlavourDetector.detect(model.files.map(\.path)) else {
            throw RegistryError.invalidModule(
                "model \(model.reference) is neither one .onnx file nor an MLflow model folder (with MLmodel); "
                    + "give --entry score.py to serve it with a scoring script")
        }
        if request.kind != .pythonScoring, request.kind != flavour.moduleKind {
            throw RegistryError.invalidModule(
                "model \(model.reference) is an \(flavour.rawValue) model, not \(request.kind.rawValue); use --kind \(flavour.moduleKind.rawValue)")
        }
        func blob(_ file: String) throws -> URL {
            guard let stored = model.files.first(where: { $0.path == file }) else {
                throw RegistryError.invalidModel("\(model.reference) (\(path))", reason: "it has no \(file)")
            }
            return try models.workspace.blobs.file(for: stored.digest)
        }
        switch flavour {
        case .onnx:
            let description = try OnnxInspector.describe(try blob(path), as: "\(model.reference) (\(path))")
            return (.onnx, "model/\(path)", description.requirements)
        case .mlflow:
            let prefix = path == "." ? "" : "\(path)/"
            _ = try FlavourDetector.mlflowSignature(mlmodel: try blob(prefix + "MLmodel"))
            guard let requirements = try? blob(prefix + "requirements.txt") else {
                throw RegistryError.invalidModel(
                    "\(model.reference) (\(path))", reason: "it has no requirements.txt; save it with MLflow ≥ 1.26, which writes one")
            }
            return (.mlflow, path == "." ? "model" : "model/\(path)", try FlavourDetector.mlflowRequirements(requirements))
        }
    }

    func cleanUp() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    /// Adds the source folder's files (or the entry file alone) at the bundle root and
    /// returns the entry's path inside the bundle.
    private static func addSource(_ source: URL?, entry: String, to files: inout [BundleFile]) throws -> String {
        guard let source else {
            let url = URL(fileURLWithPath: entry)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RegistryError.missingEntry(entry, in: FileManager.default.currentDirectoryPath)
            }
            files.append(BundleFile(path: url.lastPathComponent, source: url))
            return url.lastPathComponent
        }
        let found = try FileCollector.files(in: source)
        guard found.contains(entry) else { throw RegistryError.missingEntry(entry, in: source.path) }
        files += found.map { BundleFile(path: $0, source: source.appendingPathComponent($0)) }
        return entry
    }

    /// The requirement lines of `file`, its index options, and every line with its number.
    private static func readRequirements(_ file: URL) throws -> (requirements: [String], indexOptions: [String], lines: [RequirementLine]) {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw RegistryError.unreadablePath(file.path, reason: error.localizedDescription)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { RequirementLine(source: file.path, number: $0.offset + 1, text: $0.element.trimmingCharacters(in: .whitespaces)) }
            .filter { !$0.text.isEmpty && !$0.text.hasPrefix("#") }
        // pip option lines (`--find-links …`, `--index-url …`) steer the wheel download and
        // tell devices where the pins are; they are not requirements of the module's environment.
        let indexOptions = ["--index-url", "-i", "--extra-index-url", "--no-index", "--find-links", "-f", "--trusted-host"]
        return (
            lines.map(\.text).filter { !$0.hasPrefix("-") },
            lines.map(\.text).filter { line in indexOptions.contains { line == $0 || line.hasPrefix("\($0) ") || line.hasPrefix("\($0)=") } },
            lines
        )
    }
}
