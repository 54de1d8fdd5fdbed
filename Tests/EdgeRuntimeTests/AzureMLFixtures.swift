import EdgeRuntime
import FleetTesting
import Foundation
import Testing

/// Scoring scripts in each style Azure ML's published samples use, with a small scikit-learn
/// iris model, each laid out both as `azmlinfsrv` expects (`AML_APP_ROOT` with
/// `azureml-models/<name>/<version>/`) and as a module bundle unpacks (`model/`).
enum AzureMLFixtures {
    /// One scoring style: its `score.py`, its registered model, and the requests both
    /// servers get. Each mirrors a published sample in what it does, not in its code.
    enum Style: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// `run(raw_data)`, undecorated; the model is a folder under `AZUREML_MODEL_DIR`
        /// (azureml-examples, online endpoint model-1).
        case plain
        /// `@input_schema` with a `NumpyParameterType` parameter (azureml-examples, inference-schema numpy).
        case schemaNumpy = "schema-numpy"
        /// `@input_schema` with four `StandardPythonParameterType` parameters and an optional
        /// one with a default (azureml-examples, inference-schema standard).
        case schemaStandard = "schema-standard"
        /// `run(data, request_headers)`, undecorated.
        case requestHeaders = "request-headers"
        /// The v1 SDK's `Model.get_model_path(name)`, answering `json.dumps(...)` (MLOpsPython).
        case sdkV1 = "sdk-v1"
        /// azmlinfsrv's `@rawhttp`: `run(request)` reads the Flask request and answers JSON,
        /// CSV or an `AMLResponse` error of its own.
        case rawHTTP = "raw-http"

        var testDescription: String { rawValue }

        /// The registered model's name and version in module.json.
        var model: ScoringModel { ScoringModel(name: "iris-\(rawValue)", version: 3) }

        /// Where the model file sits under `azureml-models/<name>/<version>/` (and under `model/`).
        var modelFile: String {
            switch self {
            case .plain: "model/iris.pkl"
            case .schemaNumpy, .schemaStandard: "models/iris.pkl"
            case .requestHeaders, .sdkV1, .rawHTTP: "iris.pkl"
            }
        }

        var script: String {
            switch self {
            case .plain: AzureMLFixtures.plainScript
            case .schemaNumpy: AzureMLFixtures.schemaNumpyScript
            case .schemaStandard: AzureMLFixtures.schemaStandardScript
            case .requestHeaders: AzureMLFixtures.requestHeadersScript
            case .sdkV1: AzureMLFixtures.sdkV1Script
            case .rawHTTP: AzureMLFixtures.rawHTTPScript
            }
        }

        /// A request this style scores.
        var goodBody: String {
            switch self {
            case .plain, .sdkV1, .requestHeaders, .rawHTTP: #"{"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}"#
            case .schemaNumpy: #"{"iris": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}"#
            case .schemaStandard: AzureMLFixtures.standardBody
            }
        }

        /// What both servers are asked: good requests, then the bad ones each style can get.
        var requests: [ScoringRequest] {
            let rows = Style.plain.goodBody
            let common = [
                ScoringRequest("malformed JSON", #"{"data": [[5.1, 3.5"#),
                ScoringRequest("empty body", ""),
                ScoringRequest("not UTF-8", Data([0x7b, 0xff, 0xfe, 0x7d])),
                ScoringRequest("a JSON array", "[1, 2, 3]"),
                ScoringRequest("request ids echoed", goodBody, headers: ["x-request-id": "req-0042", "x-ms-request-id": "legacy-7"]),
                ScoringRequest("client request id", goodBody, headers: ["x-ms-client-request-id": "client-9"]),
                ScoringRequest("request id too long", goodBody, headers: ["x-request-id": String(repeating: "r", count: 101)]),
            ]
            switch self {
            case .plain, .sdkV1:
                return [
                    ScoringRequest("two rows", rows),
                    ScoringRequest("text/plain content type", rows, contentType: "text/plain"),
                    ScoringRequest("missing data member", #"{"rows": [[5.1, 3.5, 1.4, 0.2]]}"#),
                    formRequest(rows, deviation: (ours: 200, theirs: self == .plain ? 500 : 200)),
                ] + common
            case .requestHeaders:
                return [
                    ScoringRequest("two rows", rows),
                    ScoringRequest("caller header", rows, headers: ["x-caller": "line-3"]),
                    formRequest(rows, deviation: (ours: 200, theirs: 500)),
                ] + common
            case .schemaNumpy:
                return [
                    ScoringRequest("two rows", goodBody),
                    ScoringRequest("extra members ignored", #"{"iris": [[6.0, 2.2, 4.0, 1.0]], "note": "x"}"#),
                    ScoringRequest("missing parameter", rows),
                    ScoringRequest("text/plain content type", #"{"iris": [[5.1, 3.5, 1.4, 0.2]]}"#, contentType: "text/plain"),
                    formRequest(#"{"iris": [[5.1, 3.5, 1.4, 0.2]]}"#),
                    ScoringRequest("JSON with charset", #"{"iris": [[5.1, 3.5, 1.4, 0.2]]}"#, contentType: "application/json; charset=utf-8"),
                    ScoringRequest("vendor +json type", #"{"iris": [[5.1, 3.5, 1.4, 0.2]]}"#, contentType: "application/vnd.iris+json"),
                ] + common
            case .rawHTTP:
                return [
                    ScoringRequest("two rows", rows),
                    ScoringRequest("caller header", rows, headers: ["x-caller": "line-3"]),
                    ScoringRequest("CSV in, CSV out", "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", contentType: "text/csv"),
                    formRequest(rows),
                ] + common
            case .schemaStandard:
                return [
                    ScoringRequest("two flowers", goodBody),
                    ScoringRequest("optional parameter given", #"{"sepal_length": [7.2], "sepal_width": [3.2], "petal_length": [6.0], "petal_width": [1.8], "top": 2}"#),
                    ScoringRequest("missing parameter", #"{"sepal_length": [7.2], "sepal_width": [3.2], "petal_length": [6.0]}"#),
                    ScoringRequest("text/plain content type", goodBody, contentType: "text/plain"),
                    ScoringRequest("run raises on bad values", #"{"sepal_length": ["x"], "sepal_width": [3.2], "petal_length": [6.0], "petal_width": [1.8]}"#),
                ] + common
            }
        }
    }

    /// A JSON body sent as `application/x-www-form-urlencoded`, what `curl -d` sends without
    /// `-H`. Flask parses such a body as a form, so azmlinfsrv hands an undecorated `run`
    /// an empty string; this runtime hands it the body (the one deliberate difference, whose
    /// statuses `deviation` gives). A decorated `run` gets 415 from both.
    static func formRequest(_ body: String, deviation: (ours: Int, theirs: Int)? = nil) -> ScoringRequest {
        var request = ScoringRequest("form content type", body, contentType: "application/x-www-form-urlencoded")
        request.deviation = deviation
        return request
    }

    static let standardBody =
        #"{"sepal_length": [7.2, 4.9], "sepal_width": [3.2, 3.0], "petal_length": [6.0, 1.4], "petal_width": [1.8, 0.2]}"#

    /// Lays `style` out as Azure ML's container does: `app/score.py` and
    /// `app/azureml-models/<name>/<version>/<modelFile>`. Returns the app root.
    static func azureMLApp(_ style: Style, in directory: URL) throws -> URL {
        let app = directory.appending(path: "app-\(style.rawValue)")
        let version = app.appending(path: "azureml-models/\(style.model.name)/\(style.model.version)")
        try place(style, model: version.appending(path: style.modelFile), script: app.appending(path: "score.py"))
        return app
    }

    /// Lays `style` out as an unpacked bundle: `score.py` and `model/<modelFile>`.
    static func module(_ style: Style, in directory: URL) throws -> URL {
        let module = directory.appending(path: "module-\(style.rawValue)")
        try place(style, model: module.appending(path: "model/\(style.modelFile)"), script: module.appending(path: "score.py"))
        return module
    }

    private static func place(_ style: Style, model: URL, script: URL) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: model.deletingLastPathComponent(), withIntermediateDirectories: true)
        try manager.copyItem(at: trainedModel, to: model)
        try style.script.write(to: script, atomically: true, encoding: .utf8)
    }

    /// Whether the test Python has azmlinfsrv, inference-schema and the v1 SDK; under
    /// CI=true the tests run (and fail) anyway.
    static let shouldRun: Bool = {
        Fixtures.isCI
            || (FileManager.default.isExecutableFile(atPath: azmlinfsrv)
                && (try? Fixtures.run(
                    InferenceFixtures.python, ["-c", "import inference_schema, azureml.core, sklearn, joblib"])) != nil)
    }()

    /// `azmlinfsrv`, next to the test Python.
    static let azmlinfsrv = URL(fileURLWithPath: InferenceFixtures.python).deletingLastPathComponent()
        .appending(path: "azmlinfsrv").path

    /// A logistic regression on scikit-learn's bundled iris data, pickled with joblib, once per run.
    private static let trainedModel: URL = {
        let output = FileManager.default.temporaryDirectory.appending(path: "fleet-azureml-\(getpid())/iris.pkl")
        let train = """
            import os, sys, joblib
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression
            iris = load_iris()
            os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
            joblib.dump(LogisticRegression(max_iter=500).fit(iris.data, iris.target), sys.argv[1])
            """
        do {
            try Fixtures.run(InferenceFixtures.python, ["-c", train, output.path])
        } catch {
            fatalError("training the iris fixture model with \(InferenceFixtures.python) failed: \(error)")
        }
        return output
    }()

    static let plainScript = """
        import json
        import logging
        import os

        import joblib
        import numpy

        model = None


        def init():
            # The registered model is a folder named "model" holding the pickle.
            global model
            model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "iris.pkl"))
            logging.info("iris loaded")


        def run(raw_data):
            features = numpy.array(json.loads(raw_data)["data"])
            return model.predict(features).tolist()
        """

    static let schemaNumpyScript = """
        import os

        import joblib
        import numpy as np
        from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
        from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
        from inference_schema.schema_decorators import input_schema, output_schema

        species = np.array(["Setosa", "Versicolor", "Virginica"])
        model = None


        def init():
            global model
            model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR", ""), "models", "iris.pkl"))


        @input_schema(param_name="iris", param_type=NumpyParameterType(np.array([[6.3, 2.9, 5.6, 1.8]])))
        @output_schema(output_type=StandardPythonParameterType({"Category": ["Virginica"]}))
        def run(iris):
            best = np.argmax(model.predict_proba(iris), axis=1)
            return {"Category": species[best].tolist(), "rows": int(iris.shape[0])}
        """

    static let schemaStandardScript = """
        import os

        import joblib
        import numpy as np
        from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
        from inference_schema.schema_decorators import input_schema, output_schema

        species = ["Setosa", "Versicolor", "Virginica"]
        model = None


        def init():
            global model
            model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR", ""), "models", "iris.pkl"))


        @input_schema(param_name="sepal_length", param_type=StandardPythonParameterType([6.3]))
        @input_schema(param_name="sepal_width", param_type=StandardPythonParameterType([2.9]))
        @input_schema(param_name="petal_length", param_type=StandardPythonParameterType([5.6]))
        @input_schema(param_name="petal_width", param_type=StandardPythonParameterType([1.8]))
        @output_schema(output_type=StandardPythonParameterType({"Category": ["Virginica"]}))
        def run(sepal_length, sepal_width, petal_length, petal_width, top=1):
            flowers = np.array([sepal_length, sepal_width, petal_length, petal_width], dtype=float).T
            ranked = np.argsort(-model.predict_proba(flowers), axis=1)[:, :top]
            return {"Category": [[species[i] for i in row] for row in ranked.tolist()]}
        """

    static let requestHeadersScript = """
        import json
        import os

        import joblib

        model = None


        def init():
            global model
            model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "iris.pkl"))


        def run(data, request_headers):
            features = json.loads(data)["data"]
            return {
                "predictions": model.predict(features).tolist(),
                "caller": request_headers.get("X-Caller", "anonymous"),
                "contentType": request_headers.get("Content-Type"),
                "requestId": request_headers.get("X-Request-Id"),
            }
        """

    static let rawHTTPScript = """
        import json
        import os

        import joblib
        import numpy
        from azureml_inference_server_http.api.aml_request import rawhttp
        from azureml_inference_server_http.api.aml_response import AMLResponse

        model = None


        def init():
            global model
            model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "iris.pkl"))


        @rawhttp
        def run(request):
            if request.method != "POST":
                return AMLResponse("only POST is served", 405)
            if request.content_type == "text/csv":
                lines = request.get_data(as_text=True).splitlines()
                rows = [[float(value) for value in line.split(",")] for line in lines if line]
                labels = model.predict(numpy.array(rows)).tolist()
                return AMLResponse("\\n".join(str(label) for label in labels), 200, {"Content-Type": "text/csv"})
            try:
                rows = json.loads(request.get_data(False))["data"]
            except (ValueError, KeyError, TypeError) as error:
                return AMLResponse({"problem": type(error).__name__}, 422, json_str=True)
            return {
                "predictions": model.predict(numpy.array(rows)).tolist(),
                "caller": request.headers.get("X-Caller", "anonymous"),
            }
        """

    static let sdkV1Script = """
        import json

        import joblib
        import numpy
        from azureml.core.model import Model

        model = None


        def init():
            global model
            model = joblib.load(Model.get_model_path(model_name="iris-sdk-v1"))


        def run(raw_data):
            try:
                features = numpy.array(json.loads(raw_data)["data"])
                return json.dumps({"result": model.predict(features).tolist()})
            except Exception as error:
                return json.dumps({"error": str(error)})
        """
}

/// One request sent to both servers.
struct ScoringRequest: Sendable, CustomStringConvertible {
    var description: String
    var body: Data
    var contentType: String
    var headers: [String: String]
    /// The statuses the two servers give where this runtime deliberately differs from
    /// azmlinfsrv; nil where they must answer alike.
    var deviation: (ours: Int, theirs: Int)?

    init(_ description: String, _ body: String, contentType: String = "application/json", headers: [String: String] = [:]) {
        self.init(description, Data(body.utf8), contentType: contentType, headers: headers)
    }

    init(_ description: String, _ body: Data, contentType: String = "application/json", headers: [String: String] = [:]) {
        self.description = description
        self.body = body
        self.contentType = contentType
        self.headers = headers
    }
}
