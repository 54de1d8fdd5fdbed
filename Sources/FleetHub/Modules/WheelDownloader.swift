import Foundation

/// Downloads a requirements file's packages as wheels with pip, so a device can build
/// the module's environment offline. The Python is `$FLEETHUB_PYTHON`, else `python3`.
enum WheelDownloader {
    static func download(requirements: URL, into folder: URL) throws -> [String] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let python = ProcessInfo.processInfo.environment["FLEETHUB_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            python, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
            "--dest", folder.path, "-r", requirements.path,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw RegistryError.wheelDownloadFailed("cannot start \(python): \(error.localizedDescription)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RegistryError.wheelDownloadFailed(String(text.suffix(2000)))
        }
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".whl") }.sorted()
    }
}
