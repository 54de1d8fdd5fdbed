import Foundation
import ZIPFoundation

/// How much a bundle may unpack to. A zip archive can claim small sizes and inflate
/// to gigabytes (a zip bomb); these limits are checked against the bytes actually
/// written, not against what the archive's headers say.
public struct BundleLimits: Sendable, Equatable {
    /// The most bytes all files of one bundle may unpack to.
    public var maximumTotalBytes: Int64
    /// The most bytes one file may unpack to.
    public var maximumFileBytes: Int64
    /// The most entries (files, folders, links) a bundle may hold.
    public var maximumEntries: Int

    public init(maximumTotalBytes: Int64 = 2 << 30, maximumFileBytes: Int64 = 1 << 30, maximumEntries: Int = 10_000) {
        self.maximumTotalBytes = maximumTotalBytes
        self.maximumFileBytes = maximumFileBytes
        self.maximumEntries = maximumEntries
    }
}

/// Why a bundle was refused. Each case names the bundle part that was wrong.
public enum BundleError: Error, Equatable, CustomStringConvertible {
    case unreadableArchive(path: String, reason: String)
    case wrongSize(expected: Int, actual: Int)
    case wrongDigest(expected: ContentDigest, actual: ContentDigest)
    case unsafePath(String)
    case unsafeLink(path: String, target: String)
    case tooManyEntries(limit: Int)
    case fileTooLarge(path: String, limit: Int64)
    case bundleTooLarge(limit: Int64)
    case missingManifest
    case invalidManifest(String)
    case missingFile(String)
    case unlistedFile(String)
    case fileMismatch(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableArchive(let path, let reason): "bundle \(path) is not a readable zip archive: \(reason)"
        case .wrongSize(let expected, let actual):
            "bundle is \(actual) bytes, the desired state says \(expected); the download is damaged or the hub served another file"
        case .wrongDigest(let expected, let actual):
            "bundle digest is \(actual), the desired state says \(expected); the download is damaged or was tampered with"
        case .unsafePath(let path):
            "bundle entry '\(path)' is absolute or leaves the module folder ('..'); rebuild the bundle with relative paths"
        case .unsafeLink(let path, let target):
            "bundle link '\(path)' points to '\(target)', which is absolute or leaves the module folder"
        case .tooManyEntries(let limit): "bundle has more than \(limit) entries"
        case .fileTooLarge(let path, let limit): "bundle file '\(path)' unpacks to more than \(limit) bytes"
        case .bundleTooLarge(let limit): "bundle unpacks to more than \(limit) bytes in total"
        case .missingManifest: "bundle has no \(ModuleManifest.fileName)"
        case .invalidManifest(let reason): "bundle's \(ModuleManifest.fileName) is invalid: \(reason)"
        case .missingFile(let path): "\(ModuleManifest.fileName) lists '\(path)', which is not in the bundle"
        case .unlistedFile(let path): "bundle file '\(path)' is not listed in \(ModuleManifest.fileName)"
        case .fileMismatch(let path, let reason): "bundle file '\(path)' does not match \(ModuleManifest.fileName): \(reason)"
        case .writeFailed(let path, let reason): "cannot unpack to \(path): \(reason)"
        }
    }
}

/// Checks a downloaded module bundle and unpacks it into a folder, refusing anything
/// that could escape the folder, exhaust the disk, or differ from what the hub signed.
///
/// Unpacking happens in a temporary sibling folder that is renamed into place only
/// after every check passed, so a module folder is either complete and verified or absent.
public struct BundleReader: Sendable {
    public var limits: BundleLimits

    public init(limits: BundleLimits = BundleLimits()) {
        self.limits = limits
    }

    /// Checks that the archive at `url` has exactly `size` bytes and digest `digest`.
    public func verifyArchive(at url: URL, digest: ContentDigest, size: Int) throws {
        let actualSize: Int
        do {
            actualSize = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? -1
        } catch {
            throw BundleError.unreadableArchive(path: url.path, reason: "\(error.localizedDescription)")
        }
        guard actualSize == size else { throw BundleError.wrongSize(expected: size, actual: actualSize) }
        let actual: ContentDigest
        do {
            actual = try ContentDigest(ofFileAt: url)
        } catch {
            throw BundleError.unreadableArchive(path: url.path, reason: "\(error.localizedDescription)")
        }
        guard actual == digest else { throw BundleError.wrongDigest(expected: digest, actual: actual) }
    }

    /// Unpacks the archive at `archive` into `folder` (which must not exist yet) and
    /// checks every file against `module.json`. Returns the manifest.
    @discardableResult
    public func unpack(archive: URL, into folder: URL) throws -> ModuleManifest {
        try DeflateStreamCheck.verify(archive: archive, maximumFileBytes: limits.maximumFileBytes)
        let zip: Archive
        do {
            zip = try Archive(url: archive, accessMode: .read)
        } catch {
            throw BundleError.unreadableArchive(path: archive.path, reason: "\(error)")
        }
        let staging = folder.deletingLastPathComponent()
            .appendingPathComponent(".\(folder.lastPathComponent).unpacking-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw BundleError.writeFailed(path: staging.path, reason: "\(error.localizedDescription)")
        }
        do {
            let manifest = try extract(zip, into: staging)
            do {
                try FileManager.default.moveItem(at: staging, to: folder)
            } catch {
                throw BundleError.writeFailed(path: folder.path, reason: "\(error.localizedDescription)")
            }
            return manifest
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    private func extract(_ zip: Archive, into root: URL) throws -> ModuleManifest {
        var entries: [Entry] = []
        for entry in zip {
            entries.append(entry)
            guard entries.count <= limits.maximumEntries else { throw BundleError.tooManyEntries(limit: limits.maximumEntries) }
        }
        var total: Int64 = 0
        var regularFiles = Set<String>()
        // Links are made last, so no file is ever written through one.
        var links: [(path: String, target: String)] = []
        for entry in entries {
            let path = try Self.safeRelativePath(entry.path)
            let destination = root.appendingPathComponent(path)
            switch entry.type {
            case .directory:
                try createDirectory(destination)
            case .symlink:
                var target = Data()
                _ = try readEntry(entry, from: zip) { target.append($0) }
                let text = String(decoding: target, as: UTF8.self)
                guard Self.isSafeLinkTarget(text) else { throw BundleError.unsafeLink(path: path, target: text) }
                links.append((path, text))
            case .file:
                try createDirectory(destination.deletingLastPathComponent())
                guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
                    throw BundleError.writeFailed(path: destination.path, reason: "cannot create the file")
                }
                let handle: FileHandle
                do {
                    handle = try FileHandle(forWritingTo: destination)
                } catch {
                    throw BundleError.writeFailed(path: destination.path, reason: "\(error.localizedDescription)")
                }
                defer { try? handle.close() }
                var written: Int64 = 0
                _ = try readEntry(entry, from: zip) { chunk in
                    written += Int64(chunk.count)
                    total += Int64(chunk.count)
                    guard written <= limits.maximumFileBytes else {
                        throw BundleError.fileTooLarge(path: path, limit: limits.maximumFileBytes)
                    }
                    guard total <= limits.maximumTotalBytes else {
                        throw BundleError.bundleTooLarge(limit: limits.maximumTotalBytes)
                    }
                    do {
                        try handle.write(contentsOf: chunk)
                    } catch {
                        throw BundleError.writeFailed(path: destination.path, reason: "\(error.localizedDescription)")
                    }
                }
                if let permissions = entry.fileAttributes[.posixPermissions] as? NSNumber {
                    // Keep the owner's execute bit; never set-id bits or world-writable files.
                    let mode = (permissions.uint16Value & 0o755) | 0o600
                    try? FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: destination.path)
                }
                regularFiles.insert(path)
            }
        }
        for link in links {
            let destination = root.appendingPathComponent(link.path)
            try createDirectory(destination.deletingLastPathComponent())
            do {
                try FileManager.default.createSymbolicLink(atPath: destination.path, withDestinationPath: link.target)
            } catch {
                throw BundleError.writeFailed(path: destination.path, reason: "\(error.localizedDescription)")
            }
        }
        return try verify(root: root, regularFiles: regularFiles)
    }

    /// Checks the unpacked files against `module.json`: every listed file present with
    /// its size and hash, and no file that is not listed.
    private func verify(root: URL, regularFiles: Set<String>) throws -> ModuleManifest {
        guard regularFiles.contains(ModuleManifest.fileName) else { throw BundleError.missingManifest }
        let manifest: ModuleManifest
        do {
            manifest = try FleetJSON.decode(
                ModuleManifest.self, from: Data(contentsOf: root.appendingPathComponent(ModuleManifest.fileName)))
        } catch {
            throw BundleError.invalidManifest("\(error)")
        }
        var expected: [String: (sha256: String, size: Int?)] = [:]
        for model in manifest.models { expected[model.path] = (model.sha256, nil) }
        for file in manifest.files { expected[file.path] = (file.sha256, file.size) }
        for path in regularFiles.subtracting([ModuleManifest.fileName]) where expected[path] == nil {
            throw BundleError.unlistedFile(path)
        }
        for (path, entry) in expected.sorted(by: { $0.key < $1.key }) {
            let normalised = try Self.safeRelativePath(path)
            guard regularFiles.contains(normalised) else { throw BundleError.missingFile(path) }
            let url = root.appendingPathComponent(normalised)
            if let size = entry.size {
                let actual = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue
                guard actual == size else {
                    throw BundleError.fileMismatch(path: path, reason: "size is \(actual ?? -1), expected \(size)")
                }
            }
            guard let digest = ContentDigest(hex: entry.sha256.lowercased()) else {
                throw BundleError.invalidManifest("'\(entry.sha256)' for '\(path)' is not a sha256 hex digest")
            }
            let actual: ContentDigest
            do {
                actual = try ContentDigest(ofFileAt: url)
            } catch {
                throw BundleError.fileMismatch(path: path, reason: "unreadable: \(error.localizedDescription)")
            }
            guard actual == digest else {
                throw BundleError.fileMismatch(path: path, reason: "sha256 is \(actual.hex), expected \(digest.hex)")
            }
        }
        return manifest
    }

    private func readEntry(_ entry: Entry, from zip: Archive, consumer: (Data) throws -> Void) throws -> CRC32 {
        do {
            return try zip.extract(entry, consumer: consumer)
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError.unreadableArchive(path: entry.path, reason: "\(error)")
        }
    }

    private func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw BundleError.writeFailed(path: url.path, reason: "\(error.localizedDescription)")
        }
    }

    /// `path` without a trailing `/` (a folder entry), or an error when it breaks the
    /// bundle path rule (`BundlePath`).
    static func safeRelativePath(_ path: String) throws -> String {
        var trimmed = path
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard BundlePath.isSafe(trimmed) else { throw BundleError.unsafePath(path) }
        return trimmed
    }

    /// A link may only point down: relative, and without `..`. Links made only of such
    /// targets can never lead out of the folder, however they chain.
    static func isSafeLinkTarget(_ target: String) -> Bool {
        !target.isEmpty && !target.hasPrefix("/") && !target.contains("\0")
            && target.split(separator: "/").allSatisfy { $0 != ".." }
    }
}
