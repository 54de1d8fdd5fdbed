import FleetCore
import Foundation

/// The workspace's content-addressed store: every file is kept once, under the sha256
/// of its bytes, however often it is registered or packaged.
///
/// The blobs live in the workspace's `blobs/` folder (the default), or in an S3 bucket
/// (`fleethub init --blobs s3://…`), so that every `fleethub serve` over one database
/// serves every bundle; the folder then keeps a copy of the blobs this host wrote or
/// read (to package a model, to compare a bundle), which may be deleted, and the
/// scratch space.
///
/// Blobs are copied, hashed and uploaded before the database transaction that refers
/// to them, which then stays short; a blob left behind by a failed command is
/// harmless, since equal bytes map to it.
public struct BlobStore: Sendable {
    public let root: URL
    /// The bucket settings (`blobs`, `blobs-endpoint`…); nil keeps the blobs in `root`.
    public let settings: StorageSettings?

    public init(root: URL, settings: StorageSettings? = nil) {
        self.root = root
        self.settings = settings
    }

    /// The bucket that holds the blobs, nil for the local folder; its credentials are read
    /// now, so a fixed credentials file takes effect at once.
    public func bucket() throws -> BlobBucket? {
        try settings.map(BlobBucket.init(settings:))
    }

    /// Where the blob `digest` lives in the local folder (it may not exist).
    public func url(for digest: ContentDigest) -> URL {
        root.appendingPathComponent("sha256").appendingPathComponent(digest.hex)
    }

    public func contains(_ digest: ContentDigest) -> Bool {
        FileManager.default.fileExists(atPath: url(for: digest).path)
    }

    /// A local file holding the blob `digest`: from the bucket when this host has no copy.
    public func file(for digest: ContentDigest) throws -> URL {
        let local = url(for: digest)
        guard !contains(digest), let bucket = try bucket() else { return local }
        let temporary = try temporaryURL()
        defer { try? FileManager.default.removeItem(at: temporary) }
        try bucket.download(digest, to: temporary)
        guard try ContentDigest(ofFileAt: temporary) == digest else {
            throw RegistryError.blobStoreFailed(bucket.key(for: digest), reason: "the bucket's object does not hash to its name")
        }
        try adopt(temporary, as: digest)
        return local
    }

    /// Copies the file at `source` into the store (and the bucket) and returns its digest and size.
    public func store(fileAt source: URL) throws -> (digest: ContentDigest, size: Int) {
        let temporary = try temporaryURL()
        do {
            try FileManager.default.copyItem(at: source, to: temporary)
        } catch {
            throw RegistryError.unreadablePath(source.path, reason: error.localizedDescription)
        }
        let stored = try adopt(temporary)
        try upload(url(for: stored.digest), as: stored.digest)
        return stored
    }

    /// Moves the file at `temporary` (from `temporaryURL()`) into the local folder.
    public func adopt(_ temporary: URL) throws -> (digest: ContentDigest, size: Int) {
        let digest = try ContentDigest(ofFileAt: temporary)
        try adopt(temporary, as: digest)
        return (digest, Self.size(of: url(for: digest)))
    }

    /// Moves the file at `temporary` (from `temporaryURL()`), whose sha256 the caller
    /// computed while writing it, into the local folder: one rename, short enough to run
    /// inside the transaction that registers it. With a bucket, `upload` comes first.
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

    /// Puts the file at `file`, whose sha256 is `digest`, into the bucket unless it holds
    /// it already; nothing to do for the local folder, where `adopt` moves it in.
    public func upload(_ file: URL, as digest: ContentDigest) throws {
        try bucket()?.upload(file, as: digest, size: Self.size(of: file))
    }

    /// Puts every blob of the local folder into the bucket, when the workspace moves its
    /// blobs there (`fleethub config set blobs s3://…`); returns how many it uploaded.
    @discardableResult
    public func uploadLocalBlobs() throws -> Int {
        guard let bucket = try bucket() else { return 0 }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("sha256").path)) ?? []
        var uploaded = 0
        for name in names.sorted() {
            guard let digest = ContentDigest("sha256:\(name)") else { continue }
            if try bucket.upload(url(for: digest), as: digest, size: Self.size(of: url(for: digest))) { uploaded += 1 }
        }
        return uploaded
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

    private static func size(of file: URL) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
    }
}
