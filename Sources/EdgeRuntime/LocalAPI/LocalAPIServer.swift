import FleetCore
import Foundation
import Hummingbird
import Logging

/// The device's local inference API (docs/contract.md) over HTTP on loopback, and also on a
/// Unix socket when configured:
///
/// - `POST /v1/modules/{name}/score` — the body goes to `run` as azmlinfsrv passes it; its result comes back.
/// - `GET /v1/modules/{name}/health`, `GET /v1/health` — readiness and inference counters.
/// - `POST /v1/modules/{name}/telemetry` — a JSON body becomes a custom telemetry record.
/// - `/v2/…` — the Open Inference Protocol (`LocalAPIServer+OpenInference.swift`).
///
/// Errors are JSON `{"error": "...", "module": "...", "message": "..."}` with 400, 404, 413,
/// 415, 431, 500, 503 or 504; `message` is azmlinfsrv's for the same failure, and every answer
/// carries azmlinfsrv's request id headers (`RequestIDs`). A scoring request never waits
/// longer than the module's request timeout for a worker plus the timeout for `run`.
public struct LocalAPIServer: Sendable {
    public let configuration: LocalAPIConfiguration
    private let modules: LocalModules
    private let telemetry: (any LocalTelemetrySink)?
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// - Parameter onListening: called with the bound TCP port once the server
    ///   accepts connections (useful with port 0).
    public init(
        configuration: LocalAPIConfiguration, modules: LocalModules, telemetry: (any LocalTelemetrySink)? = nil,
        logger: Logger = Logger(label: "edge-runtime.local-api"), onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.modules = modules
        self.telemetry = telemetry
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves until the task is cancelled, or — when called from a service group's
    /// service — until the group's graceful shutdown. Connections are read and their
    /// handlers run on `InferenceLoop`, the loop the scoring workers' sockets are on, so a
    /// scoring request is answered without a hand-off between threads.
    public func run() async throws {
        try await withTaskExecutorPreference(InferenceLoop.executor) { try await serve() }
    }

    private func serve() async throws {
        let router = makeRouter()
        let loop = EventLoopGroupProvider.shared(InferenceLoop.eventLoop)
        let onListening = onListening
        let idleTimeout = Int64(configuration.idleTimeoutSeconds)
        let tcp = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeout))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) }, eventLoopGroupProvider: loop,
            logger: logger)
        guard let path = configuration.unixSocketPath else {
            try await tcp.run()
            return
        }
        try? FileManager.default.removeItem(atPath: path)
        let unix = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeout))),
            configuration: .init(address: .unixDomainSocket(path: path), serverName: nil), eventLoopGroupProvider: loop,
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await tcp.run() }
            group.addTask { try await unix.run() }
            try await group.next()
            group.cancelAll()
        }
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let modules = modules
        let telemetry = telemetry
        let limit = configuration.maxBodyBytes
        let logger = logger
        router.add(middleware: RequestIDMiddleware())
        Self.addOpenInference(to: router, modules: modules, limit: limit)

        router.post("/v1/modules/:name/score") { request, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let entry = modules.lookUp(name) else { return Self.unknownModule(name, in: modules) }
            guard let host = entry else {
                return Self.error(.notFound, "module \(name) is not a python-scoring module; it has no score endpoint", module: name)
            }
            let body: ByteBuffer
            switch await Self.collect(request, limit: limit, module: name) {
            case .success(let buffer): body = buffer
            case .failure(let response): return response
            }
            do throws(ScoringError) {
                let input = Array(body.readableBytesView)
                let headers = Self.scoringHeaders(request)
                let requestID = RequestIDs.current?.requestID
                let answer = try await modules.serve(name, on: host) { host throws(ScoringError) in
                    try await host.respond(input, headers: headers, requestID: requestID)
                }
                // Off the response path: the shadow gets the request after the live answer exists.
                if answer.status == 200 { modules.shadow(of: name)?.mirror(input, live: answer.body) }
                return Self.response(answer)
            } catch {
                return Self.json(.init(code: error.httpStatus), ScoringErrorBody(error).json)
            }
        }

        router.get("/v1/modules/:name/health") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let entry = modules.lookUp(name) else {
                if modules.isStarting(name) {
                    return Self.json(.serviceUnavailable, Self.encode(LocalModuleHealth(starting: name)))
                }
                guard let lastError = modules.failure(of: name) else { return Self.unknownModule(name) }
                return Self.json(.serviceUnavailable, Self.encode(LocalModuleHealth(failed: name, lastError: lastError)))
            }
            let health = LocalModuleHealth(name: name, scoring: entry, shadow: modules.shadow(of: name))
            return Self.json(health.ready ? .ok : .serviceUnavailable, Self.encode(health))
        }

        router.get("/v1/health") { _, _ -> Response in
            let health = (modules.all.map { LocalModuleHealth(name: $0.name, scoring: $0.scoring, shadow: modules.shadow(of: $0.name)) }
                + modules.failed.map { LocalModuleHealth(failed: $0.name, lastError: $0.lastError) }
                + modules.startingModules.map { LocalModuleHealth(starting: $0) })
                .sorted { $0.module < $1.module }
            let ready = health.allSatisfy(\.ready)
            return Self.json(.ok, Self.encode(LocalRuntimeHealth(status: ready ? "ok" : "degraded", modules: health)))
        }

        router.post("/v1/modules/:name/telemetry") { request, context -> Response in
            let name = context.parameters.get("name") ?? ""
            // A score.py may emit from init(), while its module is still starting.
            guard modules.lookUp(name) != nil || modules.isStarting(name) else { return Self.unknownModule(name) }
            guard let telemetry else {
                return Self.error(.serviceUnavailable, "telemetry is not enabled on this device", module: name)
            }
            let body: ByteBuffer
            switch await Self.collect(request, limit: limit, module: name) {
            case .success(let buffer): body = buffer
            case .failure(let response): return response
            }
            let data: JSONValue
            do {
                data = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
            } catch {
                return Self.error(.badRequest, "the body is not JSON: \(error)", module: name)
            }
            do {
                try await telemetry.record(module: name, data: data)
            } catch TelemetryBufferError.diskFull(let path, let folder, let freeBytes) {
                // Not logged per record: the log is on the full disk too; the buffer counts them.
                let refusal = TelemetryRefusal(
                    error: TelemetryBufferError.diskFull(path: path, folder: folder, freeBytes: freeBytes).description,
                    module: name, reason: "disk-full", dataDir: folder, freeBytes: freeBytes)
                return Self.json(.init(code: 507, reasonPhrase: "Insufficient Storage"), Self.encode(refusal))
            } catch {
                logger.error("telemetry record refused", metadata: ["module": "\(name)", "error": "\(error)"])
                return Self.error(.serviceUnavailable, "the telemetry buffer did not take the record: \(error)", module: name)
            }
            return Self.json(.accepted, Array(#"{"accepted":true}"#.utf8))
        }
        return router
    }

    /// A request's body, or the error response to send instead.
    private enum CollectedBody {
        case success(ByteBuffer)
        case failure(Response)
    }

    private static func collect(_ request: Request, limit: Int, module: String) async -> CollectedBody {
        do {
            return .success(try await request.body.collect(upTo: limit))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return .failure(Self.error(.contentTooLarge, "the body is larger than the limit of \(limit) bytes", module: module))
        } catch {
            return .failure(Self.error(.badRequest, "the body could not be read: \(error)", module: module))
        }
    }

    private static func unknownModule(_ name: String) -> Response {
        error(.notFound, "no module named \(name) runs on this device", module: name)
    }

    /// 503 for a module that is starting, 503 with its last error for one that failed and
    /// is not serving, else 404.
    private static func unknownModule(_ name: String, in modules: LocalModules) -> Response {
        if modules.isStarting(name) { return json(.serviceUnavailable, ScoringErrorBody(.notReady(module: name)).json) }
        guard let lastError = modules.failure(of: name) else { return unknownModule(name) }
        let failure = ScoringError.moduleFailed(module: name, lastError: lastError)
        return json(.serviceUnavailable, ScoringErrorBody(failure).json)
    }

    /// A scoring answer as it is: status, headers (those that are valid HTTP) and body.
    private static func response(_ answer: ScoringResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPFields.Element.Name(name) { fields.append(HTTPFields.Element(name: name, value: value)) }
        }
        return Response(
            status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    /// The request's headers for `run(…, request_headers)`, with the authority as `host`
    /// (HTTP/1's Host header, which the request keeps apart from the other fields).
    private static func scoringHeaders(_ request: Request) -> [(name: String, value: String)] {
        let host = request.head.authority.map { [(name: "host", value: $0)] } ?? []
        return host + request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
    }

    private static func error(_ status: HTTPResponse.Status, _ message: String, module: String) -> Response {
        json(status, ScoringErrorBody(error: message, module: module).json)
    }

    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// A module's entry in the health endpoints.
struct LocalModuleHealth: Encodable {
    var module: String
    var ready: Bool
    var scoring: Bool
    /// True for a module that failed (e.g. its `init()` raised) and is not serving.
    var failing: Bool
    var workers: Int?
    var restarts: Int?
    var lastError: String?
    var inference: InferenceStats?
    /// How the module's shadow version compares with it; absent without a shadow.
    var shadow: ShadowHealth?

    init(name: String, scoring host: ScoringHost?, shadow: ShadowEvaluator? = nil) {
        module = name
        scoring = host != nil
        ready = host?.isReady ?? true
        failing = false
        workers = host?.configuration.workers
        restarts = host?.restartCount
        lastError = host?.lastFailure
        inference = host?.inferenceStats
        self.shadow = shadow?.health
    }

    init(starting name: String) {
        module = name
        ready = false
        scoring = true
        failing = false
    }

    init(failed name: String, lastError: String) {
        module = name
        ready = false
        scoring = true
        failing = true
        self.lastError = lastError
    }
}

/// The body of `GET /v1/health`.
struct LocalRuntimeHealth: Encodable {
    var status: String
    var modules: [LocalModuleHealth]
}

/// The 507 answer to a telemetry record refused on a full disk: the folder to free space in,
/// and how much is free there.
private struct TelemetryRefusal: Encodable {
    var error: String
    var module: String
    var reason: String
    var dataDir: String
    var freeBytes: Int64
}
