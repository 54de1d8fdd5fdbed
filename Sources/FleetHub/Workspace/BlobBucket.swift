import FleetCore
import Foundation
import NIOCore
import Synchronization

/// The S3 bucket a workspace keeps its blobs in (`blobs: s3://BUCKET/PREFIX`), one
/// object `PREFIX/sha256/<hex>` per blob, which every hub instance reads.
///
/// The registry's commands are synchronous (their transactions are too), so the
/// transfers they start (`upload`, `download`, `check`) wait for the S3 client here;
/// `fleethub serve` streams bundles with the asynchronous `size` and `read`.
public struct BlobBucket: Sendable {
    public let store: S3ObjectStore
    public let prefix: String

    /// Reads the credentials: the settings' file, else the AWS environment.
    public init(settings: StorageSettings) throws {
        (store, prefix) = try settings.s3Bucket()
    }

    /// `s3://bucket/prefix at http://host:port`, for messages.
    public var location: String {
        "s3://\(store.bucket)\(prefix.isEmpty ? "" : "/\(prefix)") at \(store.endpoint.absoluteString)"
    }

    public func key(for digest: ContentDigest) -> String {
        (prefix.isEmpty ? "" : "\(prefix)/") + "sha256/\(digest.hex)"
    }

    /// Fails, saying what is wrong (endpoint, bucket, credentials), unless the bucket can
    /// be read with these settings.
    public func check() throws {
        try wait { try await store.checkAccess() }
    }

    /// Puts the file at `file` (`size` bytes, sha256 `digest`) into the bucket unless an
    /// object of that size is there; returns whether it uploaded.
    @discardableResult
    func upload(_ file: URL, as digest: ContentDigest, size: Int) throws -> Bool {
        let key = key(for: digest)
        return try wait {
            if try await store.size(of: key) == size { return false }
            try await store.put(key: key, file: file, size: size, sha256: digest.hex, contentType: "application/octet-stream")
            return true
        }
    }

    /// Writes the blob `digest` to `file`.
    func download(_ digest: ContentDigest, to file: URL) throws {
        guard FileManager.default.createFile(atPath: file.path, contents: nil), let handle = try? FileHandle(forWritingTo: file)
        else { throw RegistryError.unwritable(file.path, reason: "cannot create the file") }
        defer { try? handle.close() }
        let key = key(for: digest)
        try wait {
            try await store.get(key: key) { chunk in try handle.write(contentsOf: chunk.readableBytesView) }
        }
    }

    /// The size of the blob `digest`, nil when the bucket has none.
    func size(of digest: ContentDigest) async throws -> Int? {
        try await store.size(of: key(for: digest))
    }

    /// Streams the blob `digest` (only `range` when given) to `receive`.
    func read(_ digest: ContentDigest, range: ClosedRange<Int>?, receive: (ByteBuffer) async throws -> Void) async throws {
        try await store.get(key: key(for: digest), range: range, receive: receive)
    }

    /// Runs `work` to its end from synchronous code: the S3 client runs on its own
    /// event loops, so the thread that waits here holds nothing it needs.
    private func wait<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
        let outcome = Outcome<T>()
        Task {
            do {
                outcome.finish(.success(try await work()))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        return try outcome.wait()
    }
}

/// The result of work another task does, handed to the thread that waits for it.
private final class Outcome<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func finish(_ value: Result<T, any Error>) {
        result.withLock { $0 = value }
        done.signal()
    }

    func wait() throws -> T {
        done.wait()
        return try result.withLock { $0! }.get()
    }
}
