import FleetCore
import Foundation

/// The files, model and requirements one bundle is made of, gathered and checked
/// before anything is written.
struct BundleContents {
    var files: [BundleFile]
    var entry: String?
    var model: ModelVersion?
    var modelEntries: [ModelFileEntry]
    var requirements: [String]
    /// A scratch folder (downloaded wheels) to delete once the bundle is written.
    var scratch: URL?
    /// The requirements file to resolve and the vendored wheels to resolve it against.
    var resolution: (file: URL, wheels: URL?)?

    static func gather(_ request: PackageRequest, models: ModelRegistry) throws -> BundleContents {
        var files: [BundleFile] = []
        var entry: String?
        switch request.kind {
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
                files.append(BundleFile(path: path, source: models.workspace.blobs.url(for: file.digest)))
                modelEntries.append(
                    ModelFileEntry(name: found.name, version: found.version, path: path, sha256: file.digest.hex))
            }
        }

        if request.kind == .pythonScoring {
            try ModuleChecks.compilePython(files)
        }
        if let command = request.command {
            try ModuleChecks.checkCommand(command, files: files)
        }

        var requirements: [String] = []
        var scratch: URL?
        var resolution: (file: URL, wheels: URL?)?
        if let file = request.requirements {
            requirements = try readRequirements(file)
            var wheels: URL?
            if request.vendorWheels {
                let folder = try models.workspace.blobs.temporaryURL()
                scratch = folder
                wheels = folder
                for wheel in try WheelDownloader.download(requirements: file, into: folder) {
                    files.append(BundleFile(path: "wheels/\(wheel)", source: folder.appendingPathComponent(wheel)))
                }
            }
            if !requirements.isEmpty { resolution = (file, wheels) }
        } else if request.vendorWheels {
            throw RegistryError.invalidModule("--vendor-wheels needs --requirements FILE")
        }
        return BundleContents(
            files: files, entry: entry, model: model, modelEntries: modelEntries, requirements: requirements,
            scratch: scratch, resolution: resolution)
    }

    /// Resolves the requirements as the device will (`ModuleChecks.resolve`); a few
    /// seconds of pip, so only for inputs not packaged before.
    func resolveRequirements() throws {
        if let resolution { try ModuleChecks.resolve(requirements: resolution.file, wheels: resolution.wheels) }
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

    private static func readRequirements(_ file: URL) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw RegistryError.unreadablePath(file.path, reason: error.localizedDescription)
        }
        // pip option lines (`--find-links …`, `--index-url …`) steer the wheel download;
        // they are not requirements of the module's environment.
        return text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("-") }
    }
}
