import FleetCore
import Foundation

/// The workspace's content-addressed file store: every file is kept once, under the
/// sha256 of its bytes, however often it is registered or packaged.
///
/// Blobs are copied and hashed before the database transaction that refers to them,
/// which then stays short; a blob left behind by a failed command is harmless, since
/// equal bytes map to it.
public struct BlobStore: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// Where the blob `digest` lives (it may not exist).
    public func url(for digest: ContentDigest) -> URL {
        root.appendingPathComponent("sha256").appendingPathComponent(digest.hex)
    }

    public func contains(_ digest: ContentDigest) -> Bool {
        FileManager.default.fileExists(atPath: url(for: digest).path)
    }

    /// Copies the file at `source` into the store and returns its digest and size.
    public func store(fileAt source: URL) throws -> (digest: ContentDigest, size: Int) {
        let temporary = try temporaryURL()
        do {
            try FileManager.default.copyItem(at: source, to: temporary)
        } catch {
            throw RegistryError.unreadablePath(source.path, reason: error.localizedDescription)
        }
        return try adopt(temporary)
    }

    /// Moves the file at `temporary` (from `temporaryURL()`) into the store.
    public func adopt(_ temporary: URL) throws -> (digest: ContentDigest, size: Int) {
        let digest = try ContentDigest(ofFileAt: temporary)
        let size = (try FileManager.default.attributesOfItem(atPath: temporary.path)[.size] as? NSNumber)?.intValue ?? 0
        try adopt(temporary, as: digest)
        return (digest, size)
    }

    /// Moves the file at `temporary` (from `temporaryURL()`), whose sha256 the caller
    /// computed while writing it, into the store: one rename, short enough to run
    /// inside the transaction that registers it.
    public func adopt(_ temporary: URL, as digest: ContentDigest) throws {
        let destination = url(for: digest)
        if FileManager.default.fileExists(atPath: destination.path) {
            try? FileManager.default.removeItem(at: temporary)
        } else {
            chmod(temporary.path, 0o444)
            guard rename(temporary.path, destination.path) == 0 else {
                throw RegistryError.blobStoreFailed(destination.path, reason: String(cString: strerror(errno)))
            }
        }
    }

    /// A fresh path inside the store's own folder, so that `adopt` is an atomic rename.
    public func temporaryURL() throws -> URL {
        let folder = root.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(UUID().uuidString)
    }

    func createFolders() throws {
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("sha256"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
    }
}
