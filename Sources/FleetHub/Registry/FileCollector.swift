import Foundation

/// Turns the `--path` arguments of a command into the files they name, each with the
/// relative path it keeps: a file keeps its name, a folder its name and tree.
enum FileCollector {
    struct Source: Equatable {
        var path: String
        var url: URL
    }

    static func collect(_ paths: [String]) throws -> [Source] {
        var sources: [Source] = []
        for path in paths {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            let base = url.lastPathComponent
            sources += try files(in: url).map { relative in
                Source(path: relative.isEmpty ? base : "\(base)/\(relative)", url: relative.isEmpty ? url : url.appendingPathComponent(relative))
            }
        }
        var seen = Set<String>()
        for source in sources where !seen.insert(source.path).inserted {
            throw RegistryError.duplicateFilePath(source.path)
        }
        return sources.sorted { $0.path < $1.path }
    }

    /// The regular files under `url`, relative to it (`""` when `url` is itself a file),
    /// sorted, skipping hidden files and `__pycache__`.
    static func files(in url: URL) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw RegistryError.missingPath(url.path)
        }
        guard isFolder.boolValue else {
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw RegistryError.unreadablePath(url.path, reason: "permission denied")
            }
            return [""]
        }
        guard let enumerator = FileManager.default.enumerator(atPath: url.path) else {
            throw RegistryError.unreadablePath(url.path, reason: "cannot list the folder")
        }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let parts = relative.split(separator: "/")
            if parts.contains(where: { $0.hasPrefix(".") || $0 == "__pycache__" }) { continue }
            var isDirectory: ObjCBool = false
            let full = url.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                found.append(relative)
            }
        }
        guard !found.isEmpty else { throw RegistryError.noFiles(url.path) }
        return found.sorted()
    }
}
