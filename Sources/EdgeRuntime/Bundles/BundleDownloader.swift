import FleetCore
import Foundation

/// Downloads a bundle into the cache over HTTPS, trusting only the hub's CA when the
/// config names one. The bytes go to `<hex>.partial` as they arrive, so an interrupted
/// download resumes with a `Range` request; the file becomes `<hex>.zip` only when it
/// has the expected size (its digest is checked by the verify step before anything is
/// unpacked), and a server that sends more than that is cut off.
///
/// A bundle may name several hub instances (`urls`): they are tried in order, the next
/// one when an instance cannot be reached or answers 5xx, resuming what the last one
/// sent (the bytes are the same everywhere); when none gives it, the reconciler tries
/// again with its back-off (`BackoffSchedule.desiredStateRetry`).
public struct BundleDownloader: Sendable {
    public let dataDirectory: DataDirectory
    /// The hub's base URL, for bundle URLs given as a path (`/v1/bundles/…`).
    public let baseURL: URL?
    /// The device's download token (`hub.token`), sent as `Authorization: Bearer`.
    public let token: String?
    /// Trusts what the device config says for the hub (`hub.caFile`).
    private let client: FleetHTTPClient

    /// `trust` says which certificates the hub may present: `FleetHTTPClient.Trust(hubCAFile: config.hub.caFile)`.
    public init(dataDirectory: DataDirectory, baseURL: URL?, token: String? = nil, trust: FleetHTTPClient.Trust = .system) {
        self.dataDirectory = dataDirectory
        self.baseURL = baseURL
        self.token = token
        self.client = FleetHTTPClient(trust: trust)
    }

    /// Downloads `bundle` into the cache unless it is there already, from the first of
    /// its URLs that gives it.
    public func download(_ bundle: BundleReference) async throws {
        let target = dataDirectory.bundle(bundle.digest)
        if FileManager.default.fileExists(atPath: target.path) { return }
        let urls = try bundle.downloadURLs.map { text in
            guard let url = URL(string: text, relativeTo: baseURL)?.absoluteURL, url.scheme == "http" || url.scheme == "https"
            else { throw DownloadError.badURL(text) }
            return url
        }
        var unavailable: [DownloadError] = []
        for url in urls {
            do {
                return try await download(bundle, from: url, to: target)
            } catch let error as DownloadError where error.isUnavailableInstance {
                unavailable.append(error)
            }
        }
        throw unavailable.count == 1 ? unavailable[0] : DownloadError.noInstanceAnswered(unavailable)
    }

    private func download(_ bundle: BundleReference, from url: URL, to target: URL) async throws {
        let partial = dataDirectory.partialBundle(bundle.digest)
        var offset = Self.size(of: partial)
        if offset > bundle.size {
            try? FileManager.default.removeItem(at: partial)
            offset = 0
        }
        if offset < bundle.size {
            try await fetch(url, into: partial, from: offset, limit: bundle.size)
        }
        let size = Self.size(of: partial)
        guard size == bundle.size else {
            if size > bundle.size { try? FileManager.default.removeItem(at: partial) }
            throw DownloadError.wrongSize(url: url.absoluteString, expected: bundle.size, actual: size)
        }
        do {
            try FileManager.default.moveItem(at: partial, to: target)
        } catch {
            throw DownloadError.writeFailed(path: target.path, reason: "\(error.localizedDescription)")
        }
    }

    private static func size(of file: URL) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Appends the body to the partial file as it arrives; a 200 answer to a `Range`
    /// request (a server without range support) starts the file over. Stops one byte
    /// past `limit`, which the size check then refuses.
    private func fetch(_ url: URL, into partial: URL, from offset: Int, limit: Int) async throws {
        var headers: [(name: String, value: String)] = []
        if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if !FileManager.default.fileExists(atPath: partial.path) {
            guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
                throw DownloadError.writeFailed(path: partial.path, reason: "cannot create the file")
            }
        }
        let handle: FileHandle
        do {
            handle = try FileHandle(forWritingTo: partial)
        } catch {
            throw DownloadError.writeFailed(path: partial.path, reason: "\(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var written = 0
        func writing(_ body: () throws -> Void) throws {
            do {
                try body()
            } catch {
                throw DownloadError.writeFailed(path: partial.path, reason: "\(error.localizedDescription)")
            }
        }
        do {
            try await client.stream("GET", url, headers: headers) { status, _ in
                switch status {
                case 206 where offset > 0:
                    try writing {
                        try handle.truncate(atOffset: UInt64(offset))
                        try handle.seek(toOffset: UInt64(offset))
                    }
                    written = offset
                case 200:
                    try writing { try handle.truncate(atOffset: 0) }
                default:
                    throw DownloadError.httpStatus(url: url.absoluteString, status: status)
                }
            } receive: { chunk in
                let bytes = chunk.readableBytesView.prefix(limit + 1 - written)
                try writing { try handle.write(contentsOf: bytes) }
                written += bytes.count
                return written <= limit
            }
        } catch let error as HTTPRequestError {
            switch error {
            case .untrustedServer(let url, let reason): throw DownloadError.untrustedHub(url: url, reason: reason)
            case .transfer(_, let reason): throw DownloadError.transfer(url: url.absoluteString, reason: reason)
            case .unusableCAFile, .unreadableBody: throw DownloadError.transfer(url: url.absoluteString, reason: "\(error)")
            }
        }
    }
}

/// Why a bundle could not be downloaded.
public enum DownloadError: Error, Equatable, CustomStringConvertible {
    case badURL(String)
    case httpStatus(url: String, status: Int)
    case transfer(url: String, reason: String)
    case untrustedHub(url: String, reason: String)
    case wrongSize(url: String, expected: Int, actual: Int)
    case writeFailed(path: String, reason: String)
    /// Every URL of the bundle failed to connect or answered 5xx; each failure, in order.
    case noInstanceAnswered([DownloadError])

    /// A failure that another hub instance may not have: no connection, or a 5xx answer.
    var isUnavailableInstance: Bool {
        switch self {
        case .transfer: true
        case .httpStatus(_, let status): status >= 500
        default: false
        }
    }

    public var description: String {
        switch self {
        case .badURL(let url): "bundle URL '\(url)' is not an http(s) URL; check hub.bundleBaseURL in the device config"
        case .httpStatus(let url, let status) where status == 401 || status == 403:
            "downloading \(url) failed with HTTP \(status): check hub.token in the device config (a revoked or re-added device gets a new one)"
        case .httpStatus(let url, let status): "downloading \(url) failed with HTTP \(status)"
        case .transfer(let url, let reason):
            "downloading \(url) failed: \(reason); the download resumes on the next attempt"
        case .untrustedHub(let url, let reason):
            "refusing to download \(url): TLS verification failed: \(reason); check that hub.bundleBaseURL is the hub's public URL and hub.caFile the CA that issued its certificate (`fleethub device config ID --out FILE` writes both)"
        case .wrongSize(let url, let expected, let actual):
            "\(url) gave \(actual) bytes, the desired state says \(expected)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason) (is the disk full?)"
        case .noInstanceAnswered(let failures):
            "no hub instance gave the bundle (\(failures.map(\.description).joined(separator: "; "))); check that one of them runs `fleethub serve`"
        }
    }
}
