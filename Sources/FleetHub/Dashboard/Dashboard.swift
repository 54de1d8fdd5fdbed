import FleetCore
import Foundation
import Hummingbird
import Mustache

/// The web dashboard of `fleethub serve`: server-rendered HTML (Mustache templates)
/// at `/`, `/devices/{id}`, `/deployments/{name}` and `/rollouts/{name}`, which refreshes its `<main>`
/// from `?fragment=1` without a full reload; the same data as JSON under
/// `/v1/health/…`; and Prometheus text at `/metrics`. Nothing is fetched from
/// elsewhere: no external script, style or font.
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
        try library.register(DashboardTemplates.bar, named: "bar")
        self.library = library
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in
            let tag = request.uri.queryParameters["tag"].map(String.init) ?? ""
            let status = request.uri.queryParameters["status"].map(String.init) ?? ""
            return try html(request, title: "Fleet", template: "overview", view: overview(tag: tag, status: status))
        }
        router.get("/devices/:id") { request, context in
            let id = try context.parameters.require("id")
            return try html(request, title: id, template: "device", view: DashboardViews.device(health.device(id: id), now: Date()))
        }
        router.get("/deployments/:name") { request, context in
            let name = try context.parameters.require("name")
            let deployment = try DeploymentStore(workspace: health.workspace).show(name: name)
            let staged = try RolloutStore(workspace: health.workspace).all().first { $0.deployment == name }
            let view = DashboardViews.deployment(deployment, rollout: try health.rollout(deployment: name), staged: staged)
            return try html(request, title: name, template: "deployment", view: view)
        }
        router.get("/rollouts/:name") { request, context in
            let name = try context.parameters.require("name")
            let status = try RolloutStore(workspace: health.workspace, policy: health.policy).status(deployment: name)
            return try html(request, title: "rollout \(name)", template: "rollout", view: DashboardViews.rollout(status, now: Date()))
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

    func overview(tag: String, status: String) throws -> DashboardViews.Overview {
        let now = Date()
        return DashboardViews.overview(try health.overview(now: now), devices: try health.devices(now: now), tag: tag, status: status, now: now)
    }

    /// The whole page, or with `?fragment=1` only what goes inside `<main>`.
    private func html(_ request: Request, title: String, template: String, view: Any) throws -> Response {
        let content = library.render(view, withTemplate: template) ?? ""
        let body: String
        if request.uri.queryParameters["fragment"] == "1" {
            body = content
        } else {
            let page = PageView(
                title: title, content: content,
                refreshMilliseconds: Int(refreshInterval.components.seconds * 1000 + refreshInterval.components.attoseconds / 1_000_000_000_000_000))
            body = library.render(page, withTemplate: "page") ?? ""
        }
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private struct PageView {
        var title: String
        var content: String
        var refreshMilliseconds: Int
    }
}
