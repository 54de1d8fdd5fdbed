import FleetCore
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads a bundle into the cache over HTTP. The bytes go to `<hex>.partial` as
/// they arrive, so an interrupted download resumes with a `Range` request; the file
/// becomes `<hex>.zip` only when it has the expected size (its digest is checked
/// by the verify step before anything is unpacked).
public struct BundleDownloader: Sendable {
    public let dataDirectory: DataDirectory
    /// The hub's base URL, for bundle URLs given as a path (`/v1/bundles/…`).
    public let baseURL: URL?
    /// The device's download token (`hub.token`), sent as `Authorization: Bearer`.
    public let token: String?

    public init(dataDirectory: DataDirectory, baseURL: URL?, token: String? = nil) {
        self.dataDirectory = dataDirectory
        self.baseURL = baseURL
        self.token = token
    }

    /// Downloads `bundle` into the cache unless it is there already.
    public func download(_ bundle: BundleReference) async throws {
        let target = dataDirectory.bundle(bundle.digest)
        if FileManager.default.fileExists(atPath: target.path) { return }
        guard let url = URL(string: bundle.url, relativeTo: baseURL)?.absoluteURL,
            url.scheme == "http" || url.scheme == "https"
        else { throw DownloadError.badURL(bundle.url) }
        let partial = dataDirectory.partialBundle(bundle.digest)
        var offset = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? NSNumber)?.intValue ?? 0
        if offset > bundle.size {
            try? FileManager.default.removeItem(at: partial)
            offset = 0
        }
        if offset < bundle.size {
            try await fetch(url, into: partial, from: offset)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? NSNumber)?.intValue ?? 0
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

    private func fetch(_ url: URL, into partial: URL, from offset: Int) async throws {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 60)
        if offset > 0 {
            request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range")
        }
        if let token {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let receiver = try BodyReceiver(file: partial, url: url, requestedOffset: offset)
        let session = URLSession(configuration: .ephemeral, delegate: receiver, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                receiver.setCompletion(continuation)
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }
}

/// Appends a response body to the partial file as it arrives; a 200 answer to a
/// `Range` request (server without range support) starts the file over.
private final class BodyReceiver: NSObject, URLSessionDataDelegate, Sendable {
    private let file: URL
    private let url: URL
    private let requestedOffset: Int
    private struct State {
        var handle: FileHandle?
        var failure: DownloadError?
        var completion: CheckedContinuation<Void, any Error>?
    }
    private let state = Mutex(State())

    init(file: URL, url: URL, requestedOffset: Int) throws {
        self.file = file
        self.url = url
        self.requestedOffset = requestedOffset
        if !FileManager.default.fileExists(atPath: file.path) {
            guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
                throw DownloadError.writeFailed(path: file.path, reason: "cannot create the file")
            }
        }
    }

    func setCompletion(_ continuation: CheckedContinuation<Void, any Error>) {
        state.withLock { $0.completion = continuation }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let disposition: URLSession.ResponseDisposition = state.withLock { state in
            do {
                let handle = try FileHandle(forWritingTo: file)
                switch status {
                case 206 where requestedOffset > 0:
                    try handle.truncate(atOffset: UInt64(requestedOffset))
                    try handle.seek(toOffset: UInt64(requestedOffset))
                case 200:
                    try handle.truncate(atOffset: 0)
                default:
                    try? handle.close()
                    state.failure = .httpStatus(url: url.absoluteString, status: status)
                    return .cancel
                }
                state.handle = handle
                return .allow
            } catch {
                state.failure = .writeFailed(path: file.path, reason: "\(error.localizedDescription)")
                return .cancel
            }
        }
        completionHandler(disposition)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        state.withLock { state in
            guard state.failure == nil else { return }
            do {
                try state.handle?.write(contentsOf: data)
            } catch {
                state.failure = .writeFailed(path: file.path, reason: "\(error.localizedDescription)")
                dataTask.cancel()
            }
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (continuation, failure) = state.withLock { state in
            try? state.handle?.close()
            state.handle = nil
            defer { state.completion = nil }
            return (state.completion, state.failure)
        }
        if let failure {
            continuation?.resume(throwing: failure)
        } else if let error {
            continuation?.resume(throwing: DownloadError.transfer(url: url.absoluteString, reason: error.localizedDescription))
        } else {
            continuation?.resume()
        }
    }
}

/// Why a bundle could not be downloaded.
public enum DownloadError: Error, Equatable, CustomStringConvertible {
    case badURL(String)
    case httpStatus(url: String, status: Int)
    case transfer(url: String, reason: String)
    case wrongSize(url: String, expected: Int, actual: Int)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .badURL(let url): "bundle URL '\(url)' is not an http(s) URL; check hub.bundleBaseURL in the device config"
        case .httpStatus(let url, let status) where status == 401 || status == 403:
            "downloading \(url) failed with HTTP \(status): check hub.token in the device config (a revoked or re-added device gets a new one)"
        case .httpStatus(let url, let status): "downloading \(url) failed with HTTP \(status)"
        case .transfer(let url, let reason):
            "downloading \(url) failed: \(reason); the download resumes on the next attempt"
        case .wrongSize(let url, let expected, let actual):
            "\(url) gave \(actual) bytes, the desired state says \(expected)"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason) (is the disk full?)"
        }
    }
}
