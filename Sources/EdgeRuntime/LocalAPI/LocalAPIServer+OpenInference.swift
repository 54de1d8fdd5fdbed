import FleetCore
import Foundation
import Hummingbird

/// The Open Inference Protocol (KServe V2, REST) beside `/v1`, so Triton's `tritonclient`,
/// MLServer's and KServe's clients talk to the device as to their own servers. The model
/// name is the module's name on the device, its version the bundle's version:
///
/// - `GET /v2/health/live`, `GET /v2/health/ready` — 200 when live / every scoring module is ready, else 400;
/// - `GET /v2` — server metadata `{"name", "version", "extensions"}`;
/// - `GET /v2/models/{name}[/versions/{v}]` — `{"name", "versions", "platform", "inputs", "outputs"}`;
/// - `GET /v2/models/{name}[/versions/{v}]/ready` — 200 when ready, else 400;
/// - `POST /v2/models/{name}[/versions/{v}]/infer` — the V2 inference request and response.
///
/// Errors are `{"error": "…"}`: 400 for a request that does not fit the model (naming the
/// input), 404 for an unknown model or version, 413 for a body over the limit, 500 when
/// the model raised, 503 while not ready, 504 past the request timeout. The binary tensor
/// extension is not offered: a request using it gets 400.
extension LocalAPIServer {
    static func addOpenInference(to router: Router<BasicRequestContext>, modules: LocalModules, limit: Int) {
        router.get("/v2/health/live") { _, _ -> Response in
            json(.ok, encode(["live": true]))
        }
        router.get("/v2/health/ready") { _, _ -> Response in
            let ready = modules.failed.isEmpty && modules.startingModules.isEmpty
                && modules.all.allSatisfy { $0.scoring?.isReady ?? true }
            return json(ready ? .ok : .badRequest, encode(["ready": ready]))
        }
        router.get("/v2") { _, _ -> Response in
            json(.ok, encode(ServerMetadata(name: "edge-runtime", version: runtimeVersion, extensions: [])))
        }

        for prefix in ["/v2/models/:name", "/v2/models/:name/versions/:version"] {
            router.get(RouterPath(prefix)) { _, context -> Response in
                switch model(context, in: modules) {
                case .failure(let response): return response
                case .success(let host):
                    guard let metadata = host.modelMetadata else {
                        return v2Error(.serviceUnavailable, ScoringError.notReady(module: host.module).description)
                    }
                    return json(
                        .ok,
                        encode(
                            OpenInferenceModel(
                                name: host.module, versions: host.configuration.version.map { [String($0)] } ?? [],
                                platform: metadata.platform, inputs: metadata.inputs, outputs: metadata.outputs)))
                }
            }
            router.get(RouterPath(prefix + "/ready")) { _, context -> Response in
                switch model(context, in: modules) {
                case .failure(let response): return response
                case .success(let host):
                    let ready = host.isReady
                    return json(ready ? .ok : .badRequest, encode(ModelReadiness(name: host.module, ready: ready)))
                }
            }
            router.post(RouterPath(prefix + "/infer")) { request, context -> Response in
                let host: ScoringHost
                switch model(context, in: modules) {
                case .failure(let response): return response
                case .success(let found): host = found
                }
                if request.headers[HTTPFields.Element.Name("Inference-Header-Content-Length")!] != nil {
                    return v2Error(
                        .badRequest,
                        "the binary tensor extension is not supported; send the tensors as JSON (tritonclient: binary_data=False)")
                }
                let body: ByteBuffer
                do {
                    body = try await request.body.collect(upTo: limit)
                } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                    return v2Error(.contentTooLarge, "the body is larger than the limit of \(limit) bytes")
                } catch {
                    return v2Error(.badRequest, "the body could not be read: \(error)")
                }
                let input = Array(body.readableBytesView)
                let name = host.module
                let requestID = RequestIDs.current?.requestID
                do throws(ScoringError) {
                    return json(
                        .ok,
                        try await modules.serve(name, on: host) { host throws(ScoringError) in
                            try await host.infer(input, requestID: requestID)
                        })
                } catch {
                    if case .badRequest(_, let reason) = error { return v2Error(.badRequest, reason) }
                    return v2Error(.init(code: error.httpStatus), error.description)
                }
            }
        }
    }

    /// A found model, or the error response to send instead.
    private enum FoundModel {
        case success(ScoringHost)
        case failure(Response)
    }

    /// The scoring host of the route's `{name}`, checked against `{version}` when given.
    private static func model(_ context: BasicRequestContext, in modules: LocalModules) -> FoundModel {
        let name = context.parameters.get("name") ?? ""
        guard let entry = modules.lookUp(name) else {
            if modules.isStarting(name) {
                return .failure(v2Error(.serviceUnavailable, ScoringError.notReady(module: name).description))
            }
            if let lastError = modules.failure(of: name) {
                return .failure(
                    v2Error(.serviceUnavailable, ScoringError.moduleFailed(module: name, lastError: lastError).description))
            }
            return .failure(v2Error(.notFound, "no model named \(name) on this device (the model name is the module's name)"))
        }
        guard let host = entry else {
            return .failure(v2Error(.notFound, "module \(name) is a process module, not a model the device serves"))
        }
        if let asked = context.parameters.get("version"), asked != host.configuration.version.map(String.init) {
            let running = host.configuration.version.map { "version \($0)" } ?? "no version"
            return .failure(v2Error(.notFound, "model \(name) has \(running) on this device, not version \(asked)"))
        }
        return .success(host)
    }

    private static func v2Error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, encode(["error": message]))
    }
}

/// `GET /v2`.
private struct ServerMetadata: Encodable {
    var name: String
    var version: String
    var extensions: [String]
}

/// `GET /v2/models/{name}`.
private struct OpenInferenceModel: Encodable {
    var name: String
    var versions: [String]
    var platform: String
    var inputs: [TensorSpec]
    var outputs: [TensorSpec]
}

/// `GET /v2/models/{name}/ready`.
private struct ModelReadiness: Encodable {
    var name: String
    var ready: Bool
}
