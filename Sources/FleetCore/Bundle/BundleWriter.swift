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

/// How far writing a bundle got, for a progress line: the step and the bytes of it done.
public struct BundleProgress: Sendable {
    public enum Step: String, Sendable {
        /// Computing every file's sha256 for `module.json`.
        case hashing
        /// Compressing the files into the archive.
        case compressing
        /// Computing the archive's own digest.
        case digesting
    }

    public var step: Step
    public var bytesDone: Int64
    public var bytesTotal: Int64
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

    /// `manifest` with `files` filled in as the bundle of `files` would list them: each
    /// file read once, for its sha256.
    public func completed(
        _ manifest: ModuleManifest, files: [BundleFile], progress: (BundleProgress) -> Void = { _ in }
    ) throws -> ModuleManifest {
        let sorted = files.sorted { $0.path < $1.path }
        try checkPaths(sorted)
        let sizes = try sorted.map { try fileSize($0.source) }
        let total = Int64(sizes.reduce(0, +))
        var done: Int64 = 0
        var manifest = manifest
        manifest.files = try zip(sorted, sizes).map { file, size in
            let digest = try ContentDigest(ofFileAt: file.source) { read in
                progress(BundleProgress(step: .hashing, bytesDone: done + read, bytesTotal: total))
            }
            done += Int64(size)
            return FileEntry(path: file.path, sha256: digest.hex, size: size)
        }
        return manifest
    }

    /// Whether writing `manifest` (completed) and `files` would give exactly the bundle at
    /// `existing`: the same `module.json` bytes (so the same file contents) and every
    /// entry with the same permissions. Reads only the archive's directory and manifest.
    public func wouldEqual(_ manifest: ModuleManifest, files: [BundleFile], existing: URL) -> Bool {
        let opened: Archive? = try? Archive(url: existing, accessMode: .read, pathEncoding: nil)
        guard let manifestData = try? FleetJSON.prettyEncoder().encode(manifest), let archive = opened,
            let entry = archive[ModuleManifest.fileName]
        else { return false }
        var stored = Data()
        guard (try? archive.extract(entry, skipCRC32: false) { stored.append($0) }) != nil, stored == manifestData else { return false }
        let modes = Dictionary(uniqueKeysWithValues: archive.map { ($0.path, ($0.fileAttributes[.posixPermissions] as? NSNumber)?.uint16Value ?? 0) })
        guard modes.count == files.count + 1 else { return false }
        return files.allSatisfy { file in
            modes[file.path] == (FileManager.default.isExecutableFile(atPath: file.source.path) ? 0o755 : 0o644)
        }
    }

    /// Writes the bundle of `manifest` and `files` to `destination` (replaced if present),
    /// telling `progress` how far it got.
    public func write(
        manifest: ModuleManifest, files: [BundleFile], to destination: URL, progress: (BundleProgress) -> Void = { _ in }
    ) throws -> WrittenBundle {
        let sorted = files.sorted { $0.path < $1.path }
        let manifest = try completed(manifest, files: sorted, progress: progress)
        let manifestData = try FleetJSON.prettyEncoder().encode(manifest)
        let total = Int64(manifest.files.reduce(0) { $0 + $1.size })
        var compressed: Int64 = 0

        try? FileManager.default.removeItem(at: destination)
        let archive: Archive
        do {
            archive = try Archive(url: destination, accessMode: .create)
        } catch {
            throw BundleWriteError.unwritable(destination.path, reason: "\(error)")
        }
        // The files and module.json, in path order; nil is module.json.
        let entries: [(path: String, file: BundleFile?)] = (sorted.map { ($0.path, $0) } + [(ModuleManifest.fileName, nil)])
            .sorted { $0.path < $1.path }
        for entry in entries {
            guard let file = entry.file else {
                try archive.addEntry(
                    with: ModuleManifest.fileName, type: .file, uncompressedSize: Int64(manifestData.count),
                    modificationDate: Self.entryDate, permissions: 0o644, compressionMethod: .deflate
                ) { position, size in
                    manifestData.subdata(in: Int(position)..<Int(position) + size)
                }
                continue
            }
            let base = compressed
            compressed += Int64(try add(file, to: archive) { read in
                progress(BundleProgress(step: .compressing, bytesDone: base + read, bytesTotal: total))
            })
        }
        let archiveSize = Int64(try fileSize(destination))
        let digest = try ContentDigest(ofFileAt: destination) { read in
            progress(BundleProgress(step: .digesting, bytesDone: read, bytesTotal: archiveSize))
        }
        return WrittenBundle(digest: digest, size: Int(archiveSize), manifest: manifest)
    }

    /// Adds `file` and returns its size; `read` gets the bytes of it read so far.
    private func add(_ file: BundleFile, to archive: Archive, read: (Int64) -> Void) throws -> Int {
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
            read(position + Int64(chunk))
            return try handle.read(upToCount: chunk) ?? Data()
        }
        return size
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
