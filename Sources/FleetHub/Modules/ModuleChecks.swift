import FleetCore
import Foundation

/// What `fleethub module package` checks before writing a bundle, so a module that
/// cannot start on a device is refused on the hub instead: every Python file of a
/// scoring module compiles, its requirements resolve (against the index, or against
/// the wheels vendored into the bundle), and a process module's program is executable.
enum ModuleChecks {
    /// Compiles the bundle's `.py` files with the hub's Python; throws the first
    /// syntax errors as `file:line: message`.
    static func compilePython(_ files: [BundleFile]) throws {
        let scripts = files.filter { $0.path.hasSuffix(".py") && !$0.path.hasPrefix("model/") && !$0.path.hasPrefix("wheels/") }
        guard !scripts.isEmpty else { return }
        let program = """
            import sys
            failed = False
            for path, name in zip(sys.argv[1::2], sys.argv[2::2]):
                try:
                    with open(path, "rb") as f:
                        compile(f.read(), name, "exec", dont_inherit=True)
                except SyntaxError as e:
                    failed = True
                    print(f"{name}:{e.lineno}: {e.msg}" + (f": {e.text.strip()}" if e.text else ""))
            sys.exit(1 if failed else 0)
            """
        let outcome = try PythonTool.run(["-c", program] + scripts.flatMap { [$0.source.path, $0.path] })
        guard outcome.status.succeeded else {
            throw RegistryError.invalidModule(
                "\(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)); fix the script and package again")
        }
    }

    /// Resolves `requirements` with pip without installing anything, against `wheels` only
    /// when given (what the device will have), else against the index pip is configured with,
    /// and returns every distribution of the resolution pinned to its version and the sha256
    /// of the artifact pip chose. A requirement no device could install by version and hash
    /// (a local path, a version-control checkout, a direct URL without a hash) is refused,
    /// naming its line among `lines`.
    static func resolve(requirements: URL, wheels: URL?, lines: [RequirementLine]) throws -> [RequirementPin] {
        var arguments = [
            "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--disable-pip-version-check", "--no-input",
            "--report", "-",
        ]
        if let wheels { arguments += ["--no-index", "--find-links", wheels.path] }
        let outcome = try PythonTool.run(arguments + ["-r", requirements.path], separateErrors: true)
        guard outcome.status.succeeded else {
            throw RegistryError.unresolvableRequirements(
                requirements.path, pip: PipOutput.errorLines(of: outcome.errors + "\n" + outcome.output))
        }
        let report: InstallReport
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            report = try decoder.decode(InstallReport.self, from: Data(outcome.output.utf8))
        } catch {
            throw RegistryError.unresolvableRequirements(
                requirements.path, pip: "pip's --report is not the JSON this hub reads (\(error)); the hub needs pip 22.2 or later")
        }
        return try report.install.map { try pin($0, lines: lines, vendored: wheels != nil) }.sorted { $0.name < $1.name }
    }

    private static func pin(_ item: InstallReport.Item, lines: [RequirementLine], vendored: Bool) throws -> RequirementPin {
        let name = item.metadata.name
        let url = item.downloadInfo.url
        func refuse(_ reason: String) -> RegistryError {
            let path = url.hasPrefix("file://") ? String(url.dropFirst("file://".count)) : url
            let line = lines.first { $0.text.contains(url) || $0.text.contains(path) }
                ?? lines.first { $0.text.lowercased().hasPrefix("\(name.lowercased()) @") || $0.text.lowercased().hasPrefix("\(name.lowercased())@") }
                ?? lines.first { URL(fileURLWithPath: $0.text).standardizedFileURL.path == path }
            return RegistryError.unpinnableRequirement(line: line?.description ?? "\(name) (\(url))", reason: reason)
        }
        if item.downloadInfo.vcsInfo != nil { throw refuse("it is a version-control checkout (\(url))") }
        if item.downloadInfo.dirInfo != nil { throw refuse("it is a local folder (\(url)) the device does not have") }
        guard let sha256 = item.downloadInfo.archiveInfo?.sha256 else {
            throw refuse("pip reported no sha256 for \(url)")
        }
        guard item.isDirect, !vendored else { return RequirementPin(name: name, version: item.metadata.version, sha256: sha256) }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw refuse("it is a local file (\(url)) the device does not have")
        }
        let line = lines.first { $0.text.contains(url) }
        guard let line, line.text.contains("sha256") else { throw refuse("it is a direct URL without a hash (\(url))") }
        return RequirementPin(name: name, version: item.metadata.version, sha256: sha256, url: url)
    }

    /// The parts of pip's installation report (`pip install --report`) that pinning reads.
    private struct InstallReport: Decodable {
        var install: [Item]

        struct Item: Decodable {
            var metadata: Metadata
            var downloadInfo: DownloadInfo
            var isDirect: Bool
        }

        struct Metadata: Decodable {
            var name: String
            var version: String
        }

        struct DownloadInfo: Decodable {
            var url: String
            var archiveInfo: ArchiveInfo?
            var dirInfo: JSONValue?
            var vcsInfo: JSONValue?
        }

        struct ArchiveInfo: Decodable {
            var hashes: [String: String]?
            /// `sha256=…`: all that pip before 23 reports.
            var hash: String?

            var sha256: String? {
                hashes?["sha256"] ?? hash.flatMap { $0.hasPrefix("sha256=") ? String($0.dropFirst("sha256=".count)) : nil }
            }
        }
    }

    /// A process module's program, when it is a file of the bundle, must be executable
    /// there; a bare name is looked up on the device's PATH, so a bundle file needs `./`.
    static func checkCommand(_ command: [String], files: [BundleFile]) throws {
        guard let program = command.first, !program.hasPrefix("/") else { return }
        let path = program.hasPrefix("./") ? String(program.dropFirst(2)) : program
        let file = files.first { $0.path == path }
        if !program.contains("/") {
            if file != nil {
                throw RegistryError.invalidModule(
                    "--command \(program): a bare name is looked up on the device's PATH, not in the bundle; write ./\(program)")
            }
            return
        }
        guard let file else {
            throw RegistryError.invalidModule(
                "--command \(program): \(path) is not in the bundle (--source); the bundle holds \(files.map(\.path).prefix(10).joined(separator: ", "))")
        }
        guard FileManager.default.isExecutableFile(atPath: file.source.path) else {
            throw RegistryError.invalidModule(
                "--command \(program): \(file.source.path) is not executable; `chmod +x \(file.source.path)` and package again")
        }
    }
}

/// A line of a module's requirements, kept to name it when it is refused.
struct RequirementLine: CustomStringConvertible {
    /// The requirements file, or what made the line (a no-code model's requirements).
    var source: String
    var number: Int
    var text: String

    var description: String { "\(source):\(number): \(text)" }
}
