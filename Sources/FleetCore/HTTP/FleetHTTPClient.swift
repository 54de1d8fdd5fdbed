import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The fleet's one way to speak HTTP(S): the device's bundle downloads, `edge-runtime
/// check` and telemetry uploads, and the S3 client the hub keeps its blobs with. It
/// exists so that each of them trusts exactly the CA its settings name (the hub's CA for
/// the hub, so a look-alike hub with a publicly trusted certificate is refused) and
/// reports a certificate that does not verify as such, naming the URL and the reason.
public struct FleetHTTPClient: Sendable {
    /// Which certificates a server may present.
    public enum Trust: Equatable, Sendable {
        /// Those the system's trust store accepts.
        case system
        /// Only those signed by the CA in this PEM file (`hub.caFile`).
        case only(caFile: String)
        /// The system's, and those signed by the CA in this file (a private S3 endpoint).
        case systemAnd(caFile: String)

        /// The hub's trust: its CA file when the config names one, else the system's.
        public init(hubCAFile: String?) {
            self = hubCAFile.map { .only(caFile: $0) } ?? .system
        }
    }

    /// A response whose body was read into memory.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: Data
    }

    public var trust: Trust
    /// How long to wait for the connection (and TLS handshake), and then for each read.
    public var connectTimeout: Duration
    public var readTimeout: Duration

    public init(trust: Trust = .system, connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(60)) {
        self.trust = trust
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
    }

    /// What a request sends: bytes in memory, or a file read as it is sent (a bundle or
    /// model of hundreds of megabytes never sits in memory).
    public enum Body: Sendable {
        case data(Data)
        case file(URL, size: Int)
    }

    /// Sends one request and reads at most `maxBody` bytes of the answer's body.
    public func send(
        _ method: String, _ url: URL, headers: [(name: String, value: String)] = [], body: Body? = nil,
        maxBody: Int = 1 << 20
    ) async throws -> Response {
        var response = Response(status: 0, headers: [], body: Data())
        try await stream(method, url, headers: headers, body: body) { status, headers in
            response.status = status
            response.headers = headers
        } receive: { chunk in
            guard response.body.count < maxBody else { return false }
            response.body.append(contentsOf: chunk.readableBytesView.prefix(maxBody - response.body.count))
            return true
        }
        return response
    }

    /// Sends one request, hands the status and headers to `head`, then each piece of the
    /// body to `receive` as it arrives, until the body ends or `receive` returns false.
    /// Errors thrown by `head` and `receive` pass through unchanged; network and TLS
    /// failures become `HTTPRequestError`.
    public func stream(
        _ method: String, _ url: URL, headers: [(name: String, value: String)] = [], body: Body? = nil,
        head: (Int, [(name: String, value: String)]) throws -> Void, receive: (ByteBuffer) async throws -> Bool
    ) async throws {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        switch body {
        case .data(let data): request.body = .bytes(ByteBuffer(bytes: data))
        case .file(let file, let size): request.body = .stream(try FileChunks(file), length: .known(Int64(size)))
        case nil: break
        }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: try configuration(for: url))
        do {
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: .distantFuture)
            } catch {
                throw Self.failure(error, url: url, trust: trust)
            }
            try head(Int(response.status.code), response.headers.map { ($0.name, $0.value) })
            var chunks = response.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do {
                    chunk = try await chunks.next()
                } catch {
                    throw Self.failure(error, url: url, trust: trust)
                }
                guard let chunk, try await receive(chunk) else { break }
            }
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func configuration(for url: URL) throws -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        switch trust {
        case .system: break
        case .only(let caFile):
            tls.trustRoots = .certificates(try Self.certificates(caFile, url: url))
        case .systemAnd(let caFile):
            tls.additionalTrustRoots = [.certificates(try Self.certificates(caFile, url: url))]
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            timeout: .init(connect: Self.timeAmount(connectTimeout), read: Self.timeAmount(readTimeout)))
        // A refused port or a certificate that does not verify fails at once: each caller
        // (reconciler, uploader) retries with its own back-off and reports the failure.
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    private static func certificates(_ caFile: String, url: URL) throws -> [NIOSSLCertificate] {
        do {
            return try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw HTTPRequestError.unusableCAFile(url: url.absoluteString, caFile: caFile, reason: "\(error)")
        }
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// A TLS failure says what about the certificate failed; anything else is a transfer failure.
    static func failure(_ error: any Error, url: URL, trust: Trust) -> HTTPRequestError {
        let trusted = switch trust {
        case .system: "the system's trust store"
        case .only(let caFile): "the CA in \(caFile)"
        case .systemAnd(let caFile): "the system's trust store or the CA in \(caFile)"
        }
        switch error {
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return .untrustedServer(
                url: url.absoluteString,
                reason: "its certificate does not name \(url.host ?? "the host") (\(error))")
        case let error as NIOSSLError:
            let text = "\(error)"
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return .untrustedServer(
                    url: url.absoluteString,
                    reason: "its certificate does not verify against \(trusted) (CERTIFICATE_VERIFY_FAILED): it is signed by another CA, expired or not yet valid")
            }
            return .untrustedServer(url: url.absoluteString, reason: "the TLS handshake failed: \(text)")
        case let error as BoringSSLError:
            return .untrustedServer(url: url.absoluteString, reason: "the TLS handshake failed: \(error)")
        default:
            return .transfer(url: url.absoluteString, reason: "\(error)")
        }
    }
}

/// A file's bytes in pieces of 1 MiB, read as a request body goes out.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let handle: FileHandle

    init(_ file: URL) throws {
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw HTTPRequestError.unreadableBody(path: file.path, reason: error.localizedDescription)
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle

        func next() async throws -> ByteBuffer? {
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}

/// Why an HTTP(S) request got no answer.
public enum HTTPRequestError: Error, Equatable, CustomStringConvertible {
    /// The server's certificate was refused.
    case untrustedServer(url: String, reason: String)
    /// The CA file to trust cannot be read.
    case unusableCAFile(url: String, caFile: String, reason: String)
    /// The connection failed, timed out or broke off.
    case transfer(url: String, reason: String)
    /// The file to send cannot be read.
    case unreadableBody(path: String, reason: String)

    public var description: String {
        switch self {
        case .untrustedServer(let url, let reason):
            "TLS verification of \(url) failed: \(reason); check the URL, and that the config's caFile is the CA that issued the server's certificate (for the hub, `fleethub device config` writes hub.caFile)"
        case .unusableCAFile(let url, let caFile, let reason):
            "cannot trust \(url): the CA file \(caFile) is not a readable PEM certificate: \(reason)"
        case .transfer(let url, let reason): "\(url): \(reason)"
        case .unreadableBody(let path, let reason): "cannot read \(path) to send it: \(reason)"
        }
    }
}
