import FleetCore
import Foundation
import Hummingbird
import Mustache

/// The web dashboard of `fleethub serve`, the workspace's studio: server-rendered HTML
/// (Mustache templates) of the fleet at `/` and `/devices/{id}`, of every artifact at
/// `/models`, `/modules`, `/deployments` (each with a page per name) and of staged rollouts
/// at `/rollouts/{name}`; the same data as JSON under `/v1/health/…`; and Prometheus text at
/// `/metrics`. A page is made of parts; its script asks for the page with `?live=1`
/// every few seconds and gets 304 when nothing changed, else JSON with only the parts
/// that did. Nothing is fetched from elsewhere: no external script, style or font.
public struct Dashboard: Sendable {
    public let health: FleetHealth
    /// The running ingestion, for `/metrics`' counters; nil when the server does not ingest.
    public let ingestion: HealthIngestion?
    public var refreshInterval: Duration
    private let library: MustacheLibrary

    public init(health: FleetHealth, ingestion: HealthIngestion?, refreshInterval: Duration = .seconds(5)) throws {
        self.health = health
        self.ingestion = ingestion
        self.refreshInterval = refreshInterval
        var library = MustacheLibrary()
        for (name, text) in DashboardTemplates.all {
            try library.register(text, named: name)
        }
        self.library = library
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in
            let query = DashboardViews.DeviceQuery(request.uri.queryParameters)
            let view = try overview(query)
            return try page(request, title: "Fleet", parts: DashboardTemplates.overviewParts.map { ($0, view) })
        }
        router.get("/devices/:id") { request, context in
            let id = try context.parameters.require("id")
            return try page(request, title: id, template: "device", view: DashboardViews.device(health.device(id: id), now: Date(), driftAlertPSI: health.policy.driftAlertPSI))
        }
        router.get("/models") { request, _ in
            let view = try studio().models()
            return try page(request, title: "models", template: "models", view: view)
        }
        router.get("/models/:name") { request, context in
            let view = try studio().model(name: context.parameters.require("name"))
            return try page(request, title: view.name, template: "model", view: view)
        }
        router.get("/modules") { request, _ in
            let view = try studio().modules()
            return try page(request, title: "modules", template: "modules", view: view)
        }
        router.get("/modules/:name") { request, context in
            let view = try studio().module(name: context.parameters.require("name"))
            return try page(request, title: view.name, template: "module", view: view)
        }
        router.get("/deployments") { request, _ in
            let view = try studio().deployments()
            return try page(request, title: "deployments", template: "deployments", view: view)
        }
        router.get("/deployments/:name") { request, context in
            let name = try context.parameters.require("name")
            let deployment = try DeploymentStore(workspace: health.workspace).show(name: name)
            let staged = try RolloutStore(workspace: health.workspace).all().first { $0.deployment == name }
            let view = DashboardViews.deployment(
                deployment, rollout: try health.rollout(deployment: name), staged: staged,
                history: try DeploymentStore(workspace: health.workspace).history(name: name),
                page: DashboardViews.DeviceQuery(request.uri.queryParameters).page)
            return try page(request, title: name, template: "deployment", view: view)
        }
        router.get("/rollouts/:name") { request, context in
            let name = try context.parameters.require("name")
            let status = try RolloutStore(workspace: health.workspace, policy: health.policy).status(deployment: name)
            return try page(request, title: "rollout \(name)", template: "rollout", view: DashboardViews.rollout(status, now: Date()))
        }
        router.get("/v1/rollouts/:name") { _, context in
            try JSONResponse.ok(RolloutStore(workspace: health.workspace, policy: health.policy).status(deployment: context.parameters.require("name")))
        }
        router.get("/v1/health/overview") { _, _ in try JSONResponse.ok(health.overview()) }
        router.get("/v1/health/devices") { _, _ in try JSONResponse.ok(health.devices()) }
        router.get("/v1/health/devices/:id") { _, context in
            try JSONResponse.ok(health.device(id: context.parameters.require("id")))
        }
        router.get("/v1/health/deployments/:name") { _, context in
            try JSONResponse.ok(health.rollout(deployment: context.parameters.require("name")))
        }
        router.get("/metrics") { _, _ in
            let text = try MetricsText.render(
                overview: health.overview(), rejections: health.rejections(), counters: ingestion?.counters)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }

    func overview(_ query: DashboardViews.DeviceQuery) throws -> DashboardViews.Overview {
        let now = Date()
        let fleet = try health.fleet(now: now)
        return DashboardViews.overview(fleet.overview, devices: fleet.devices, query: query, now: now)
    }

    private func studio() -> StudioViews { StudioViews(health: health) }

    private func page(_ request: Request, title: String, template: String, view: Any) throws -> Response {
        try page(request, title: title, parts: [(template, view)])
    }

    /// The whole page; with `?live=1`, 304 when the client's `If-None-Match` is the
    /// page's ETag, else JSON `{"etag", "parts": {id: html}}` with the parts whose ETag is
    /// not the one the client sent in `X-Dashboard-Parts` (`id=etag, …`).
    private func page(_ request: Request, title: String, parts: [(template: String, view: Any)]) throws -> Response {
        let rendered = parts.map { part in
            let html = library.render(part.view, withTemplate: part.template) ?? ""
            return RenderedPart(id: part.template, etag: Self.etag(Data(html.utf8)), html: html)
        }
        let etag = Self.etag(Data(rendered.map(\.etag).joined(separator: ",").utf8))
        if request.uri.queryParameters["live"] == "1" {
            if request.headers[.ifNoneMatch] == "\"\(etag)\"" {
                return Response(status: .notModified, headers: [.eTag: "\"\(etag)\""])
            }
            let have = LiveParts(header: request.headers[values: Self.partsHeader].joined(separator: ","))
            let changed = rendered.filter { have.etags[$0.id] != $0.etag }
            let update = LiveUpdate(etag: etag, parts: Dictionary(uniqueKeysWithValues: changed.map { ($0.id, LiveUpdate.Part(etag: $0.etag, html: $0.html)) }))
            return Response(
                status: .ok, headers: [.contentType: "application/json", .eTag: "\"\(etag)\"", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try FleetJSON.encode(update))))
        }
        let content = rendered.map { #"<div class="part" id="part-\#($0.id)" data-etag="\#($0.etag)">\#($0.html)</div>"# }
            .joined(separator: "\n")
        let view = PageView(
            title: title, content: content, etag: etag,
            refreshMilliseconds: Int(refreshInterval.components.seconds * 1000 + refreshInterval.components.attoseconds / 1_000_000_000_000_000))
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .eTag: "\"\(etag)\"", .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: library.render(view, withTemplate: "page") ?? "")))
    }

    static let partsHeader = HTTPFields.Element.Name("X-Dashboard-Parts")!

    static func etag(_ data: Data) -> String { String(ContentDigest(of: data).hex.prefix(16)) }

    private struct RenderedPart { var id: String, etag: String, html: String }

    /// The answer to `?live=1`: the page's ETag and the parts that changed.
    struct LiveUpdate: Codable {
        struct Part: Codable { var etag: String, html: String }
        var etag: String
        var parts: [String: Part]
    }

    /// `X-Dashboard-Parts: devices=0123abcd, alerts=…`: the parts the browser shows.
    struct LiveParts {
        var etags: [String: String] = [:]

        init(header: String) {
            for item in header.split(separator: ",") {
                let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2 { etags[pair[0]] = pair[1] }
            }
        }
    }

    private struct PageView {
        var title: String
        var content: String
        var etag: String
        var refreshMilliseconds: Int
    }
}
