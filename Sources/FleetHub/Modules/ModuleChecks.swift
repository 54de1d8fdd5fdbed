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

    /// Resolves `requirements` with pip without installing anything: against `wheels`
    /// only when given (what the device will have), else against the index pip is configured with.
    static func resolve(requirements: URL, wheels: URL?) throws {
        var arguments = [
            "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--disable-pip-version-check", "--no-input",
        ]
        if let wheels { arguments += ["--no-index", "--find-links", wheels.path] }
        let outcome = try PythonTool.run(arguments + ["-r", requirements.path])
        guard outcome.status.succeeded else {
            throw RegistryError.unresolvableRequirements(requirements.path, pip: PipOutput.errorLines(of: outcome.output))
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
