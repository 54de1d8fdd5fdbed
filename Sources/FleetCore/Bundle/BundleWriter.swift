import Foundation
import ZIPFoundation

/// One file to put into a module bundle: where it goes inside the bundle, and where
/// its bytes come from.
public struct BundleFile: Equatable, Sendable {
    /// Relative path inside the bundle, `/`-separated (e.g. `model/iris.onnx`).
    public var path: String
    /// The file on disk whose bytes are copied.
    public var source: URL

    public init(path: String, source: URL) {
        self.path = path
        self.source = source
    }
}

/// What `BundleWriter` produced: the archive's identity and size.
public struct WrittenBundle: Equatable, Sendable {
    public var digest: ContentDigest
    public var size: Int
    /// The `module.json` written into the archive, with its `files` filled in.
    public var manifest: ModuleManifest
}

/// Writes module bundles (docs/contract.md) deterministically: entries sorted by path, every
/// timestamp fixed, permissions reduced to 0644/0755, so the same manifest and the
/// same file contents always give the same archive bytes and the same digest.
///
/// The runtime trusts a bundle only through `module.json`, so the writer computes the
/// sha256 and size of every file itself and fills `manifest.files`.
public struct BundleWriter: Sendable {
    /// The timestamp every entry carries: the earliest date a zip can hold.
    public static let entryDate = Date(timeIntervalSince1970: 315_532_800)

    public init() {}

    /// Writes the bundle of `manifest` and `files` to `destination` (replaced if present).
    public func write(manifest: ModuleManifest, files: [BundleFile], to destination: URL) throws -> WrittenBundle {
        let sorted = files.sorted { $0.path < $1.path }
        try checkPaths(sorted)
        var manifest = manifest
        manifest.files = try sorted.map { file in
            let size = try fileSize(file.source)
            return FileEntry(path: file.path, sha256: try ContentDigest(ofFileAt: file.source).hex, size: size)
        }
        let manifestData = try FleetJSON.prettyEncoder().encode(manifest)

        try? FileManager.default.removeItem(at: destination)
        let archive: Archive
        do {
            archive = try Archive(url: destination, accessMode: .create)
        } catch {
            throw BundleWriteError.unwritable(destination.path, reason: "\(error)")
        }
        var entries: [(path: String, add: () throws -> Void)] = sorted.map { file in
            (file.path, { try self.add(file, to: archive) })
        }
        entries.append((ModuleManifest.fileName, {
            try archive.addEntry(
                with: ModuleManifest.fileName, type: .file, uncompressedSize: Int64(manifestData.count),
                modificationDate: Self.entryDate, permissions: 0o644, compressionMethod: .deflate
            ) { position, size in
                manifestData.subdata(in: Int(position)..<Int(position) + size)
            }
        }))
        for entry in entries.sorted(by: { $0.path < $1.path }) {
            try entry.add()
        }
        let digest = try ContentDigest(ofFileAt: destination)
        return WrittenBundle(digest: digest, size: try fileSize(destination), manifest: manifest)
    }

    private func add(_ file: BundleFile, to archive: Archive) throws {
        let size = try fileSize(file.source)
        let executable = FileManager.default.isExecutableFile(atPath: file.source.path)
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: file.source)
        } catch {
            throw BundleWriteError.unreadable(file.source.path, reason: "\(error.localizedDescription)")
        }
        defer { try? handle.close() }
        try archive.addEntry(
            with: file.path, type: .file, uncompressedSize: Int64(size), modificationDate: Self.entryDate,
            permissions: executable ? 0o755 : 0o644, compressionMethod: .deflate
        ) { position, chunk in
            try handle.seek(toOffset: UInt64(position))
            return try handle.read(upToCount: chunk) ?? Data()
        }
    }

    private func checkPaths(_ files: [BundleFile]) throws {
        var seen = Set<String>([ModuleManifest.fileName])
        for file in files {
            guard BundlePath.isSafe(file.path) else { throw BundleWriteError.badPath(file.path) }
            guard seen.insert(file.path).inserted else { throw BundleWriteError.duplicatePath(file.path) }
        }
    }

    private func fileSize(_ url: URL) throws -> Int {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            return (attributes[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw BundleWriteError.unreadable(url.path, reason: "\(error.localizedDescription)")
        }
    }
}

/// Why a bundle could not be written.
public enum BundleWriteError: Error, Equatable, CustomStringConvertible {
    case badPath(String)
    case duplicatePath(String)
    case unreadable(String, reason: String)
    case unwritable(String, reason: String)

    public var description: String {
        switch self {
        case .badPath(let path):
            "'\(path)' cannot be a bundle path: it must be relative, without empty, '.' or '..' parts, a backslash or NUL; rename the file"
        case .duplicatePath(let path):
            "two files would be stored at '\(path)' in the bundle (module.json is reserved); rename one"
        case .unreadable(let path, let reason): "cannot read \(path) for the bundle: \(reason)"
        case .unwritable(let path, let reason): "cannot write the bundle \(path): \(reason)"
        }
    }
}
