import FleetCore
import Foundation

/// Downloads a requirements file's packages as wheels with pip, so a device can build
/// the module's environment offline.
enum WheelDownloader {
    static func download(requirements: URL, into folder: URL) throws -> [String] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let outcome = try PythonTool.run([
            "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
            "--dest", folder.path, "-r", requirements.path,
        ])
        guard outcome.status.succeeded else {
            throw RegistryError.wheelDownloadFailed(PipOutput.errorLines(of: outcome.output))
        }
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".whl") }.sorted()
    }
}
