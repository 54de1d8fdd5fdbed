import EdgeRuntime
import FleetTesting
import Foundation

/// Python, the iris example and small `score.py` files for the inference tests.
enum InferenceFixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `FLEET_PYTHON`, else the repository's `.venv`, else `python3` from PATH.
    static let python: String = {
        if let python = ProcessInfo.processInfo.environment["FLEET_PYTHON"] { return python }
        let venv = repositoryRoot.appending(path: ".venv/bin/python").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        return Fixtures.which("python3") ?? "python3"
    }()

    /// Whether that Python has what the iris example needs; under CI=true the tests
    /// run (and fail) anyway.
    static let shouldRun: Bool = {
        Fixtures.isCI || (try? Fixtures.run(python, ["-c", "import numpy, onnxruntime, sklearn, skl2onnx"])) != nil
    }()

    /// A module folder with the iris `score.py` and a freshly trained `model/iris.onnx`.
    static func irisModule(in directory: URL) throws -> URL {
        let module = directory.appending(path: "iris")
        let iris = repositoryRoot.appending(path: "examples/iris")
        try FileManager.default.createDirectory(at: module.appending(path: "model"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: iris.appending(path: "score.py"), to: module.appending(path: "score.py"))
        try FileManager.default.copyItem(at: trainedIrisModel, to: module.appending(path: "model/iris.onnx"))
        return module
    }

    /// Trains the iris model once per test run.
    static let trainedIrisModel: URL = {
        let output = FileManager.default.temporaryDirectory.appending(path: "fleet-iris-\(getpid())/iris.onnx")
        let train = repositoryRoot.appending(path: "examples/iris/train.py").path
        do {
            try Fixtures.run(python, [train, "--out", output.path])
        } catch {
            fatalError("examples/iris/train.py failed with \(python): \(error)")
        }
        return output
    }()

    /// A `score.py` whose `run` does what the request asks: raise, exit, sleep, wait
    /// for other requests, or report its pid, its environment, or numpy values.
    static let behaviourScript = """
        import json, os, time

        started = False

        def init():
            global started
            if os.environ.get("FAIL_INIT"):
                raise RuntimeError("model file is missing")
            started = True

        def run(raw_data):
            request = json.loads(raw_data)
            action = request.get("action")
            if action == "raise":
                raise ValueError("cannot score " + str(request.get("value")))
            if action == "exit":
                os._exit(7)
            if action == "sleep":
                time.sleep(request["seconds"])
                return {"slept": request["seconds"], "pid": os.getpid()}
            if action == "barrier":
                # Returns once `count` requests are inside run() at the same time.
                open(os.path.join(request["directory"], str(os.getpid())), "w").close()
                deadline = time.time() + 20
                while len(os.listdir(request["directory"])) < request["count"] and time.time() < deadline:
                    time.sleep(0.01)
                return {"met": len(os.listdir(request["directory"])) >= request["count"], "pid": os.getpid()}
            if action == "environment":
                return {"AZUREML_MODEL_DIR": os.environ["AZUREML_MODEL_DIR"], "MODEL_DIR": os.environ["MODEL_DIR"],
                        "cwd": os.getcwd(), "started": started, "type": type(raw_data).__name__}
            if action == "numpy":
                import numpy as np
                return {"array": np.arange(3), "scalar": np.float32(1.5), "matrix": np.eye(2, dtype=np.int64)}
            if action == "string":
                return "plain text"
            return [request, os.getpid()]
        """

    /// A module folder holding `behaviourScript` as `score.py` and an empty `model/`.
    static func behaviourModule(in directory: URL, name: String = "behaviour") throws -> URL {
        let module = directory.appending(path: name)
        try FileManager.default.createDirectory(at: module.appending(path: "model"), withIntermediateDirectories: true)
        try behaviourScript.write(to: module.appending(path: "score.py"), atomically: true, encoding: .utf8)
        return module
    }

    static func configuration(
        _ name: String, module: URL, workers: Int = 1, timeout: Duration = .seconds(10),
        environment: [String: String] = [:]
    ) -> ScoringConfiguration {
        ScoringConfiguration(
            module: name, moduleDirectory: module, entry: "score.py", python: python,
            hostScript: ScoringHostScript.bundled,
            workers: workers, environment: environment, requestTimeout: timeout, startTimeout: .seconds(60))
    }
}
