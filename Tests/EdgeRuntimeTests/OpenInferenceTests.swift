@testable import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The Open Inference Protocol (KServe V2) on the local API, checked with clients and peers
/// no one here wrote: `tritonclient.http` against the iris ONNX no-code module (compared with
/// onnxruntime run directly), MLServer serving the same MLflow model, `mlflow.pyfunc`.
@Suite(
    .serialized,
    .enabled(if: OpenInferenceFixtures.shouldRun, "needs tritonclient, mlflow, onnxruntime and scikit-learn in the test Python (scripts/setup)"))
struct OpenInferenceTests {
    @Test func tritonclientGetsWhatOnnxruntimeComputesFromTheNoCodeModule() async throws {
        let directory = try TemporaryDirectory()
        let module = try OpenInferenceFixtures.irisONNXModule(in: directory.url)
        try await AzureMLCompatibilityTests.withAPI(OpenInferenceFixtures.onnxConfiguration(module)) { port in
            let report = try OpenInferenceFixtures.tritonReport(
                port: port, model: "iris-onnx", onnx: module.appending(path: "model/iris.onnx"))
            #expect(report["live"] as? Bool == true)
            #expect(report["ready"] as? Bool == true)
            #expect(report["model_ready"] as? Bool == true)
            #expect(report["version_ready"] as? Bool == true)
            #expect(report["other_version_ready"] as? Bool == false)
            #expect((report["server"] as? [String: Any])?["name"] as? String == "edge-runtime")
            let metadata = try #require(report["metadata"] as? [String: Any])
            #expect(metadata["name"] as? String == "iris-onnx")
            #expect(metadata["versions"] as? [String] == ["1"])
            #expect(metadata["platform"] as? String == "onnxruntime_onnx")
            let inputs = try #require(metadata["inputs"] as? [[String: Any]])
            #expect(inputs.count == 1)
            #expect(inputs.first?["name"] as? String == "X")
            #expect(inputs.first?["datatype"] as? String == "FP32")
            #expect(inputs.first?["shape"] as? [Int] == [-1, 4])
            let outputs = try #require(metadata["outputs"] as? [[String: Any]])
            #expect(outputs.map { $0["name"] as? String } == ["label", "probabilities"])
            #expect(outputs.map { $0["datatype"] as? String } == ["INT64", "FP32"])

            let response = try #require(report["response"] as? [String: Any])
            #expect(response["id"] as? String == "req-7")
            #expect(response["model_name"] as? String == "iris-onnx")
            #expect(response["model_version"] as? String == "1")
            #expect(report["labels_equal"] as? Bool == true, "\(report)")
            #expect(report["probabilities_close"] as? Bool == true, "\(report)")
            #expect(report["all_outputs"] as? [String] == ["label", "probabilities"])
            #expect(report["all_labels_equal"] as? Bool == true)

            let wrongShape = try #require(report["wrong_shape"] as? [String: Any], "a wrong shape must fail")
            #expect(wrongShape["status"] as? String == "400")
            #expect((wrongShape["message"] as? String)?.contains("input X") == true, "\(wrongShape)")
            let unknown = try #require(report["unknown_model"] as? [String: Any])
            #expect(unknown["status"] as? String == "404")
        }
    }

    @Test func requestsThatDoNotFitTheModelAre400sNamingTheInput() async throws {
        let directory = try TemporaryDirectory()
        let module = try OpenInferenceFixtures.irisONNXModule(in: directory.url)
        try await AzureMLCompatibilityTests.withAPI(OpenInferenceFixtures.onnxConfiguration(module)) { port in
            let infer = "http://127.0.0.1:\(port)/v2/models/iris-onnx/infer"
            let good = try await HTTP.post(infer, json: OpenInferenceFixtures.inferRequest(input: "X", id: "a1"))
            #expect(good.status == 200)
            #expect(good.object["id"] as? String == "a1")

            let shape = try await HTTP.post(infer, json: OpenInferenceFixtures.inferRequest(input: "X", shape: [2, 8]))
            #expect(shape.status == 400)
            #expect((shape.object["error"] as? String)?.contains("input X: shape [2, 8]") == true, "\(shape.object)")
            let count = try await HTTP.post(infer, json: OpenInferenceFixtures.inferRequest(input: "X", shape: [3, 4]))
            #expect(count.status == 400)
            #expect((count.object["error"] as? String)?.contains("input X") == true, "\(count.object)")
            let datatype = try await HTTP.post(infer, json: OpenInferenceFixtures.inferRequest(input: "X", datatype: "INT64"))
            #expect(datatype.status == 400)
            #expect((datatype.object["error"] as? String)?.contains("input X") == true, "\(datatype.object)")
            let name = try await HTTP.post(infer, json: OpenInferenceFixtures.inferRequest(input: "features"))
            #expect(name.status == 400)
            #expect((name.object["error"] as? String)?.contains("input features") == true, "\(name.object)")
            let noInputs = try await HTTP.post(infer, json: ["inputs": [Any]()])
            #expect(noInputs.status == 400)
            #expect(noInputs.object["error"] is String)

            let unknown = try await HTTP.post(
                "http://127.0.0.1:\(port)/v2/models/nope/infer", json: OpenInferenceFixtures.inferRequest(input: "X"))
            #expect(unknown.status == 404)
            #expect(unknown.object.keys.sorted() == ["error"])
            let version = try await HTTP.post(
                "http://127.0.0.1:\(port)/v2/models/iris-onnx/versions/2/infer", json: OpenInferenceFixtures.inferRequest(input: "X"))
            #expect(version.status == 404)
            #expect((version.object["error"] as? String)?.contains("version 1") == true)
            let versioned = try await HTTP.get("http://127.0.0.1:\(port)/v2/models/iris-onnx/versions/1")
            #expect(versioned.status == 200)
            #expect(versioned.object["name"] as? String == "iris-onnx")
            #expect(try await HTTP.get("http://127.0.0.1:\(port)/v2/models/nope/ready").status == 404)
        }
    }

    @Test func theV1ScoreRouteServesTheNoCodeModuleAsWell() async throws {
        let directory = try TemporaryDirectory()
        let module = try OpenInferenceFixtures.irisONNXModule(in: directory.url)
        try await AzureMLCompatibilityTests.withAPI(OpenInferenceFixtures.onnxConfiguration(module)) { port in
            let score = "http://127.0.0.1:\(port)/v1/modules/iris-onnx/score"
            let single = try await HTTP.post(score, json: ["data": OpenInferenceFixtures.rows])
            let general = try await HTTP.post(score, json: ["inputs": ["X": OpenInferenceFixtures.rows]])
            #expect(single.status == 200)
            #expect(general.status == 200)
            #expect(single.object["label"] as? [Int] == [0, 1, 2, 2], "\(single.object)")
            #expect(general.object["label"] as? [Int] == single.object["label"] as? [Int])
            #expect((single.object["probabilities"] as? [[Double]])?.count == 4)
            let v2 = try await HTTP.post(
                "http://127.0.0.1:\(port)/v2/models/iris-onnx/infer", json: OpenInferenceFixtures.inferRequest(input: "X"))
            let label = (v2.object["outputs"] as? [[String: Any]])?.first { $0["name"] as? String == "label" }
            #expect(label?["data"] as? [Int] == single.object["label"] as? [Int])

            let wrong = try await HTTP.post(score, json: ["inputs": ["Y": OpenInferenceFixtures.rows]])
            #expect(wrong.status == 400)
            #expect((wrong.object["error"] as? String)?.contains("input Y") == true, "\(wrong.object)")
        }
    }

    @Test func aScoreScriptGetsEachInputAsAJSONMemberOfItsName() async throws {
        let directory = try TemporaryDirectory()
        let module = try InferenceFixtures.irisModule(in: directory.url)
        var configuration = InferenceFixtures.configuration("iris", module: module)
        configuration.version = 4
        try await AzureMLCompatibilityTests.withAPI(configuration) { port in
            let metadata = try await HTTP.get("http://127.0.0.1:\(port)/v2/models/iris")
            #expect(metadata.object["platform"] as? String == "python")
            #expect(metadata.object["versions"] as? [String] == ["4"])
            #expect((metadata.object["inputs"] as? [Any])?.isEmpty == true)
            // examples/iris/score.py reads json.loads(raw_data)["data"].
            let answer = try await HTTP.post(
                "http://127.0.0.1:\(port)/v2/models/iris/versions/4/infer", json: OpenInferenceFixtures.inferRequest(input: "data", id: "s"))
            #expect(answer.status == 200, "\(answer.object)")
            #expect(answer.object["model_version"] as? String == "4")
            let outputs = try #require(answer.object["outputs"] as? [[String: Any]])
            let predictions = try #require(outputs.first { $0["name"] as? String == "predictions" })
            #expect(predictions["datatype"] as? String == "BYTES")
            #expect(predictions["shape"] as? [Int] == [4])
            #expect(predictions["data"] as? [String] == ["setosa", "versicolor", "virginica", "virginica"])
            let probabilities = try #require(outputs.first { $0["name"] as? String == "probabilities" })
            #expect(probabilities["datatype"] as? String == "FP64")
            #expect(probabilities["shape"] as? [Int] == [4, 3])
            #expect((probabilities["data"] as? [Double])?.count == 12)
            // run() raising (here: a wrong member) is the model's failure: 500 with the reason.
            let raised = try await HTTP.post(
                "http://127.0.0.1:\(port)/v2/models/iris/infer", json: OpenInferenceFixtures.inferRequest(input: "rows"))
            #expect(raised.status == 500)
            #expect((raised.object["error"] as? String)?.contains("KeyError") == true, "\(raised.object)")
        }
    }

    @Test func anMLflowModelPredictsWhatPyfuncPredictsAndAnswersAsMLServerDoes() async throws {
        let directory = try TemporaryDirectory()
        let (module, predictions) = try OpenInferenceFixtures.mlflowModule(in: directory.url)
        #expect(predictions.count == 4)
        let configuration = ScoringConfiguration(
            module: "iris-mlflow", moduleDirectory: module, entry: "model/iris-mlflow", kind: .mlflow, version: 1,
            python: InferenceFixtures.python, requestTimeout: .seconds(30), startTimeout: .seconds(120))
        let mlserver = try await OpenInferenceFixtures.startMLServer(
            serving: module.appending(path: "model/iris-mlflow"), as: "iris-mlflow", in: directory)
        defer { mlserver.process.stop() }
        try await AzureMLCompatibilityTests.withAPI(configuration) { port in
            let score = try await HTTP.post("http://127.0.0.1:\(port)/v1/modules/iris-mlflow/score", json: ["data": OpenInferenceFixtures.rows])
            #expect(score.status == 200, "\(score.object)")
            #expect(score.object["predictions"] as? [Int] == predictions)

            let metadata = try await HTTP.get("http://127.0.0.1:\(port)/v2/models/iris-mlflow")
            let theirMetadata = try await HTTP.get("http://127.0.0.1:\(mlserver.port)/v2/models/iris-mlflow")
            #expect(Self.tensors(metadata.object["inputs"]) == Self.tensors(theirMetadata.object["inputs"]))

            let request = OpenInferenceFixtures.inferRequest(input: "input-0", datatype: "FP64", id: "m1")
            let ours = try await HTTP.post("http://127.0.0.1:\(port)/v2/models/iris-mlflow/infer", json: request)
            let theirs = try await HTTP.post("http://127.0.0.1:\(mlserver.port)/v2/models/iris-mlflow/infer", json: request)
            #expect(ours.status == 200, "\(ours.object)")
            #expect(theirs.status == 200, "\(theirs.object)")
            // The same structure: the spec's members (ours adds the optional model_version; both
            // may add parameters), and per output the same keys, datatype and shape.
            let optional: Set<String> = ["model_version", "parameters"]
            #expect(Set(ours.object.keys).subtracting(optional) == Set(theirs.object.keys).subtracting(optional))
            #expect(ours.object["id"] as? String == "m1")
            #expect(theirs.object["id"] as? String == "m1")
            let mine = try #require(ours.object["outputs"] as? [[String: Any]])
            let other = try #require(theirs.object["outputs"] as? [[String: Any]])
            #expect(mine.count == other.count)
            for (a, b) in zip(mine, other) {
                #expect(Set(a.keys).subtracting(optional) == Set(b.keys).subtracting(optional))
                #expect(a["datatype"] as? String == b["datatype"] as? String)
                #expect(a["shape"] as? [Int] == b["shape"] as? [Int])
                #expect(a["data"] as? [Int] == b["data"] as? [Int])
            }
            #expect(mine.first?["data"] as? [Int] == predictions)
        }
    }

    @Test func aNoCodeBundleLaunchesTheScoringHostOnItsModelWithItsVersion() throws {
        let manifest = ModuleManifest(
            name: "iris-onnx", version: 3, kind: .onnx, entry: "model/iris.onnx",
            models: [ModelFileEntry(name: "iris", version: 1, path: "model/iris.onnx", sha256: String(repeating: "0", count: 64))],
            files: [], requirements: ["onnxruntime==1.32.0"], createdAt: Date())
        let bundle = BundleReference(digest: ContentDigest(of: Data("iris-onnx".utf8)), size: 1, url: "http://127.0.0.1/b")
        let launch = try ModuleLaunch(
            spec: ModuleSpec(name: "iris", kind: .onnx, bundle: bundle), manifest: manifest,
            folder: URL(fileURLWithPath: "/tmp/iris"), python: "python3")
        #expect(launch.scoring?.kind == .onnx)
        #expect(launch.scoring?.entry == "model/iris.onnx")
        #expect(launch.scoring?.version == 3)
        // A process spec cannot run a scoring bundle.
        #expect(throws: ModuleLaunchError.self) {
            try ModuleLaunch(
                spec: ModuleSpec(name: "iris", kind: .process, bundle: bundle), manifest: manifest,
                folder: URL(fileURLWithPath: "/tmp/iris"), python: "python3")
        }
    }

    /// Inputs or outputs as (datatype, shape) pairs, which both servers describe alike (names may differ).
    private static func tensors(_ value: Any?) -> [String] {
        (value as? [[String: Any]] ?? []).map { "\($0["datatype"] ?? "") \($0["shape"] ?? "")" }
    }
}
