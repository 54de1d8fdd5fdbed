import FleetCore
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// `fleethub serve`: the hub's HTTP server. Devices download bundles from it
/// (`GET /v1/bundles/sha256:…`, resumable with `Range`), and scripts read the registry,
/// devices and deployments as JSON (`/v1/models`, `/v1/modules`, `/v1/devices`,
/// `/v1/deployments`). Every request passes `HTTPAccessMiddleware` first: devices
/// need their token, readers the viewer token, writers the admin token. It speaks HTTPS
/// when the public URL is `https://` (`Workspace.https()`), since tokens and bundles
/// cross networks the fleet does not trust.
public struct HubServer: Sendable {
    public let workspace: Workspace
    public let host: String
    /// 0 picks a free port; `run(onReady:)` reports the one bound.
    public let port: Int
    public var logger: Logger
    /// The device-health ingestion running beside the server, whose counters `/metrics` shows.
    public var ingestion: HealthIngestion?

    public init(
        workspace: Workspace, host: String = "127.0.0.1", port: Int = 8080, ingestion: HealthIngestion? = nil,
        logger: Logger = Logger(label: "fleethub.http")
    ) {
        self.workspace = workspace
        self.ingestion = ingestion
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Serves until the task is cancelled (tests) or, with `handleSignals`, until SIGINT/SIGTERM.
    /// Fails with `HubServerError` when it cannot listen on `host:port`, and before
    /// listening when the public URL is `http://` without `insecure-http`, or the HTTPS
    /// certificate cannot be loaded.
    public func run(handleSignals: Bool = false, onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let listening = Atomic(false)
        let tls = try workspace.https().map(Self.tlsConfiguration)
        let app = Application(
            router: try router(),
            server: try tls.map { try .tls(tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: "fleethub/\(fleetHubVersion)"),
            onServerRunning: { channel in
                listening.store(true, ordering: .relaxed)
                await onReady(channel.localAddress?.port ?? 0)
            },
            logger: logger)
        let address = ListenAddress(host: host, port: port)
        do {
            if handleSignals {
                try await app.runService()
            } else {
                try await app.run()
            }
        } catch let error as IOError where !listening.load(ordering: .relaxed) {
            if error.errnoCode == EADDRINUSE { throw HubServerError.addressInUse(address) }
            throw HubServerError.cannotListen(address, reason: String(cString: strerror(error.errnoCode)))
        }
    }

    static func tlsConfiguration(_ https: HubHTTPS) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(https.certificatePath)
            let key = try NIOSSLPrivateKey(file: https.keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw SecurityError.unusableTLSFiles(certificate: https.certificatePath, key: https.keyPath, reason: "\(error)")
        }
    }

    func router() throws -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(JSONErrorMiddleware())
        router.middlewares.add(HTTPAccessMiddleware(workspace: workspace))
        let bundles = BundleEndpoint(blobs: workspace.blobs)
        router.get("/v1/bundles/:digest") { request, context in
            try await bundles.respond(to: request, context: context, includeBody: true)
        }
        router.head("/v1/bundles/:digest") { request, context in
            try await bundles.respond(to: request, context: context, includeBody: false)
        }
        let models = ModelRegistry(workspace: workspace)
        let modules = ModuleRegistry(workspace: workspace)
        let devices = DeviceRegistry(workspace: workspace)
        let deployments = DeploymentStore(workspace: workspace)
        router.get("/v1/models") { _, _ in try JSONResponse.ok(models.list()) }
        router.get("/v1/models/:name") { _, context in
            try JSONResponse.ok(models.list(name: context.parameters.require("name")))
        }
        router.get("/v1/models/:name/:version") { _, context in
            try JSONResponse.ok(models.show(VersionedName(name: context.parameters.require("name"), version: context.parameters.require("version", as: Int.self))))
        }
        router.get("/v1/modules") { _, _ in try JSONResponse.ok(modules.list()) }
        router.get("/v1/modules/:name") { _, context in
            try JSONResponse.ok(modules.list(name: context.parameters.require("name")))
        }
        router.get("/v1/modules/:name/:version") { _, context in
            try JSONResponse.ok(modules.show(VersionedName(name: context.parameters.require("name"), version: context.parameters.require("version", as: Int.self))))
        }
        router.get("/v1/devices") { _, _ in try JSONResponse.ok(devices.list()) }
        router.get("/v1/devices/:id") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.ok(DeviceDetail(device: devices.show(id: id), desired: devices.desiredState(id: id)))
        }
        router.get("/v1/deployments") { _, _ in try JSONResponse.ok(deployments.list()) }
        router.get("/v1/deployments/:name") { _, context in
            let deployment = try deployments.show(name: context.parameters.require("name"))
            return try JSONResponse.ok(DeploymentDetail(deployment: deployment, devices: deployments.targetedDevices(of: deployment)))
        }
        try Dashboard(health: FleetHealth(workspace: workspace, cache: ingestion?.readCache ?? FleetReadCache()), ingestion: ingestion).addRoutes(to: router)
        return router
    }
}

/// A device with the desired state last staged for it, as `device show` and the API print it.
public struct DeviceDetail: Codable, Sendable {
    public var device: Device
    public var desired: DesiredState?
    /// What the device last reported, for `device show`; absent in the API's `/v1/devices/{id}`.
    public var health: DeviceHealthDetail?

    public init(device: Device, desired: DesiredState?, health: DeviceHealthDetail? = nil) {
        self.device = device
        self.desired = desired
        self.health = health
    }
}

/// A deployment with the devices its target currently matches.
public struct DeploymentDetail: Codable, Sendable {
    public var deployment: ResolvedDeployment
    public var devices: [String]

    public init(deployment: ResolvedDeployment, devices: [String]) {
        self.deployment = deployment
        self.devices = devices
    }
}

enum JSONResponse {
    static func ok(_ value: some Encodable) throws -> Response {
        respond(.ok, try FleetJSON.prettyEncoder().encode(value))
    }

    static func respond(_ status: HTTPResponse.Status, _ data: Data) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns the registry's "not found" errors into 404 and any failure into a JSON body
/// `{"error": "…"}`, so API clients never parse HTML or plain text. An `HTTPError`
/// keeps its headers: a 401's `WWW-Authenticate` is what makes a browser ask for the
/// dashboard's login.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            var response = Self.body(error.status, error.body ?? error.status.reasonPhrase)
            response.headers.append(contentsOf: error.headers)
            return response
        } catch let error as RegistryError {
            return Self.body(.notFound, error.description)
        } catch let error as DeploymentError {
            switch error {
            case .rolloutNotOpen: return Self.body(.conflict, error.description)
            default: return Self.body(.notFound, error.description)
            }
        } catch {
            return Self.body(.internalServerError, "\(error)")
        }
    }

    static func body(_ status: HTTPResponse.Status, _ message: String) -> Response {
        JSONResponse.respond(status, (try? FleetJSON.encode(["error": message])) ?? Data())
    }
}
