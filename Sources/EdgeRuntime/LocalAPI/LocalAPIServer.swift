import FleetCore
import Foundation
import Hummingbird
import Logging

/// The device's local inference API (DESIGN §7) over HTTP on loopback, and also on a
/// Unix socket when configured:
///
/// - `POST /v1/modules/{name}/score` — the body goes to `run(raw_data)`; the JSON result comes back.
/// - `GET /v1/modules/{name}/health`, `GET /v1/health` — readiness and inference counters.
/// - `POST /v1/modules/{name}/telemetry` — a JSON body becomes a custom telemetry record.
///
/// Errors are JSON `{"error": "...", "module": "..."}` with 400, 404, 413, 500, 503 or
/// 504. A scoring request never waits longer than the module's request timeout for a
/// worker plus the timeout for `run`.
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
    /// service — until the group's graceful shutdown.
    public func run() async throws {
        let router = makeRouter()
        let onListening = onListening
        let idleTimeout = Int64(configuration.idleTimeoutSeconds)
        let tcp = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeout))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        guard let path = configuration.unixSocketPath else {
            try await tcp.run()
            return
        }
        try? FileManager.default.removeItem(atPath: path)
        let unix = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeout))), configuration: .init(address: .unixDomainSocket(path: path), serverName: nil),
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

        router.post("/v1/modules/:name/score") { request, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let entry = modules.lookUp(name) else { return Self.unknownModule(name) }
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
                let json = try await host.score(input)
                // Off the response path: the shadow gets the request after the live answer exists.
                modules.shadow(of: name)?.mirror(input, live: json)
                return Self.json(.ok, json)
            } catch {
                return Self.json(.init(code: error.httpStatus), ScoringErrorBody(error).json)
            }
        }

        router.get("/v1/modules/:name/health") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard let entry = modules.lookUp(name) else { return Self.unknownModule(name) }
            let health = LocalModuleHealth(name: name, scoring: entry, shadow: modules.shadow(of: name))
            return Self.json(health.ready ? .ok : .serviceUnavailable, Self.encode(health))
        }

        router.get("/v1/health") { _, _ -> Response in
            let health = modules.all.map {
                LocalModuleHealth(name: $0.name, scoring: $0.scoring, shadow: modules.shadow(of: $0.name))
            }
            let ready = health.allSatisfy(\.ready)
            return Self.json(.ok, Self.encode(LocalRuntimeHealth(status: ready ? "ok" : "degraded", modules: health)))
        }

        router.post("/v1/modules/:name/telemetry") { request, context -> Response in
            let name = context.parameters.get("name") ?? ""
            guard modules.lookUp(name) != nil else { return Self.unknownModule(name) }
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

    private static func error(_ status: HTTPResponse.Status, _ message: String, module: String) -> Response {
        json(status, ScoringErrorBody(error: message, module: module).json)
    }

    private static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    private static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8]) -> Response {
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
        workers = host?.configuration.workers
        restarts = host?.restartCount
        lastError = host?.lastFailure
        inference = host?.inferenceStats
        self.shadow = shadow?.health
    }
}

/// The body of `GET /v1/health`.
struct LocalRuntimeHealth: Encodable {
    var status: String
    var modules: [LocalModuleHealth]
}
