import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// No-code modules (the iris ONNX file, an MLflow scikit-learn model) and the clients and
/// peers no one here wrote — `tritonclient`, MLServer, `mlflow.pyfunc` — for the Open
/// Inference tests.
enum OpenInferenceFixtures {
    /// Whether the test Python has tritonclient and mlflow; under CI=true the tests run (and fail) anyway.
    static let shouldRun: Bool = {
        Fixtures.isCI
            || (try? Fixtures.run(
                InferenceFixtures.python, ["-c", "import numpy, onnxruntime, sklearn, tritonclient.http, mlflow.sklearn"])) != nil
    }()

    /// MLServer's command: `FLEET_MLSERVER`, else the `.venv-mlserver` scripts/setup makes
    /// (MLServer pins packages the test venv needs at other versions).
    static let mlserver: String = ProcessInfo.processInfo.environment["FLEET_MLSERVER"]
        ?? InferenceFixtures.repositoryRoot.appending(path: ".venv-mlserver/bin/mlserver").path

    /// A no-code module folder holding the trained iris model as `model/iris.onnx`.
    static func irisONNXModule(in directory: URL) throws -> URL {
        let module = directory.appending(path: "iris-onnx")
        try FileManager.default.createDirectory(at: module.appending(path: "model"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: InferenceFixtures.trainedIrisModel, to: module.appending(path: "model/iris.onnx"))
        return module
    }

    static func onnxConfiguration(_ module: URL, name: String = "iris-onnx", workers: Int = 1) -> ScoringConfiguration {
        ScoringConfiguration(
            module: name, moduleDirectory: module, entry: "model/iris.onnx", kind: .onnx, version: 1,
            python: InferenceFixtures.python, workers: workers, requestTimeout: .seconds(30), startTimeout: .seconds(90))
    }

    /// Four iris flowers, one of each class and one near a border.
    static let rows: [[Double]] = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]

    /// A V2 infer request for `rows` as one input.
    static func inferRequest(input: String, datatype: String = "FP32", shape: [Int] = [4, 4], id: String? = nil) -> [String: Any] {
        var request: [String: Any] = [
            "inputs": [["name": input, "shape": shape, "datatype": datatype, "data": rows.flatMap { $0 }]]
        ]
        request["id"] = id
        return request
    }

    /// Runs tritonclient against the device's local API on `port`, and onnxruntime directly
    /// on `onnx`; prints one JSON report (see `tritonClientScript`).
    static func tritonReport(port: Int, model: String, onnx: URL) throws -> [String: Any] {
        let script = FileManager.default.temporaryDirectory.appending(path: "fleet-triton-\(getpid()).py")
        try tritonClientScript.write(to: script, atomically: true, encoding: .utf8)
        let output = try Fixtures.run(InferenceFixtures.python, [script.path, String(port), model, onnx.path])
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }

    static let tritonClientScript = """
        import json, sys
        import numpy as np
        import onnxruntime as ort
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        port, model, onnx_path = sys.argv[1], sys.argv[2], sys.argv[3]
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]],
                        dtype=np.float32)
        report = {
            "live": client.is_server_live(), "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready(model), "version_ready": client.is_model_ready(model, "1"),
            "other_version_ready": client.is_model_ready(model, "2"),
            "server": client.get_server_metadata(), "metadata": client.get_model_metadata(model),
        }
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        labels, probabilities = session.run(["label", "probabilities"], {"X": rows})

        x = httpclient.InferInput("X", list(rows.shape), "FP32")
        x.set_data_from_numpy(rows, binary_data=False)
        outputs = [httpclient.InferRequestedOutput("label", binary_data=False),
                   httpclient.InferRequestedOutput("probabilities", binary_data=False)]
        result = client.infer(model, [x], outputs=outputs, request_id="req-7", model_version="1")
        report["response"] = result.get_response()
        report["labels_equal"] = bool(np.array_equal(result.as_numpy("label"), labels))
        report["probabilities_close"] = bool(np.allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=0))

        every = client.infer(model, [x])  # no outputs named: all of them
        report["all_outputs"] = sorted(output["name"] for output in every.get_response()["outputs"])
        report["all_labels_equal"] = bool(np.array_equal(every.as_numpy("label"), labels))

        wrong = httpclient.InferInput("X", [4, 2, 2], "FP32")
        wrong.set_data_from_numpy(rows.reshape(4, 2, 2), binary_data=False)
        try:
            client.infer(model, [wrong])
            report["wrong_shape"] = None
        except InferenceServerException as error:
            report["wrong_shape"] = {"status": error.status(), "message": error.message()}
        try:
            client.get_model_metadata("no-such-model")
            report["unknown_model"] = None
        except InferenceServerException as error:
            report["unknown_model"] = {"status": error.status(), "message": error.message()}
        print(json.dumps(report))
        """

    /// Trains a scikit-learn iris classifier, saves it with `mlflow.sklearn.save_model` into
    /// `directory/iris-mlflow` (with a signature), and returns the folder and what
    /// `mlflow.pyfunc.load_model(folder).predict(rows)` answers.
    static func mlflowModel(in directory: URL) throws -> (folder: URL, predictions: [Int]) {
        let folder = directory.appending(path: "iris-mlflow")
        let script = directory.appending(path: "save_mlflow.py")
        try """
            import json, sys
            import mlflow.pyfunc, mlflow.sklearn, numpy as np
            from mlflow.models import infer_signature
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression

            features, labels = load_iris(return_X_y=True)
            model = LogisticRegression(max_iter=1000).fit(features, labels)
            mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(features, model.predict(features)))
            rows = np.array(json.loads(sys.argv[2]), dtype=np.float64)
            print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(rows).tolist()))
            """.write(to: script, atomically: true, encoding: .utf8)
        let rowsJSON = String(decoding: try JSONSerialization.data(withJSONObject: rows), as: UTF8.self)
        let output = try Fixtures.run(InferenceFixtures.python, [script.path, folder.path, rowsJSON])
        let line = output.split(separator: "\n").last.map(String.init) ?? "[]"
        let predictions = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Int] ?? []
        return (folder, predictions)
    }

    /// A no-code module folder holding the MLflow model as `model/iris-mlflow`.
    static func mlflowModule(in directory: URL) throws -> (module: URL, predictions: [Int]) {
        let module = directory.appending(path: "iris-mlflow-module")
        try FileManager.default.createDirectory(at: module.appending(path: "model"), withIntermediateDirectories: true)
        let (folder, predictions) = try mlflowModel(in: module.appending(path: "model"))
        precondition(folder.lastPathComponent == "iris-mlflow")
        return (module, predictions)
    }

    /// MLServer serving the MLflow model at `folder` as `name` over HTTP, once it answers ready.
    static func startMLServer(serving folder: URL, as name: String, in directory: TemporaryDirectory) async throws
        -> (process: ChildProcess, port: Int)
    {
        let settings = directory.url.appending(path: "mlserver")
        try FileManager.default.createDirectory(at: settings, withIntermediateDirectories: true)
        let port = try Fixtures.freePort()
        let server: [String: Any] = [
            "host": "127.0.0.1", "http_port": port, "grpc_port": try Fixtures.freePort(),
            "metrics_port": try Fixtures.freePort(), "parallel_workers": 0,
        ]
        let model: [String: Any] = [
            "name": name, "implementation": "mlserver_mlflow.MLflowRuntime", "parameters": ["uri": folder.path],
        ]
        try JSONSerialization.data(withJSONObject: server).write(to: settings.appending(path: "settings.json"))
        try JSONSerialization.data(withJSONObject: model).write(to: settings.appending(path: "model-settings.json"))
        let log = directory.file("mlserver.log")
        let process = try ChildProcess(mlserver, ["start", settings.path], outputPath: log)
        let ready = await eventually(timeout: .seconds(120)) {
            guard process.isRunning else { return true }
            return (try? await HTTP.get("http://127.0.0.1:\(port)/v2/models/\(name)/ready").status) == 200
        }
        guard ready, process.isRunning else {
            process.stop()
            throw FixtureError.didNotStart("mlserver", log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        return (process, port)
    }
}

/// A status and a JSON body, from `GET` or `POST` of JSON.
struct HTTP {
    var status: Int
    var json: Any?

    var object: [String: Any] { json as? [String: Any] ?? [:] }

    static func get(_ url: String) async throws -> HTTP {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return HTTP(status: (response as? HTTPURLResponse)?.statusCode ?? 0, json: try? JSONSerialization.jsonObject(with: data))
    }

    static func post(_ url: String, json body: Any) async throws -> HTTP {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 60
        let (data, response) = try await URLSession.shared.data(for: request)
        return HTTP(status: (response as? HTTPURLResponse)?.statusCode ?? 0, json: try? JSONSerialization.jsonObject(with: data))
    }
}
