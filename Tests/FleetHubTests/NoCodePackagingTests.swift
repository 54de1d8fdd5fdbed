import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// `fleethub module package --model M` without `--entry`: an ONNX file (checked and read with
/// the real onnxruntime) or an MLflow model folder (saved with the real MLflow) becomes a
/// no-code module; the registry records the model's flavour and signature.
@Suite(.enabled(if: NoCodeModels.shouldRun, "needs onnxruntime, skl2onnx and mlflow in the hub's Python (scripts/setup)"))
struct NoCodePackagingTests {
    let hub: HubFixture

    init() throws {
        hub = try HubFixture()
    }

    @Test func anONNXModelBecomesAnOnnxModulePinnedToTheOnnxruntimeThatLoadedIt() throws {
        let onnx = try NoCodeModels.irisONNX(in: hub.directory.url)
        let model = try hub.models.register(name: "iris", paths: [onnx.path])
        #expect(model.flavour == .onnx)
        #expect(model.signature?.inputs == [TensorSpec(name: "X", datatype: "FP32", shape: [-1, 4])])
        #expect(model.signature?.outputs.map(\.name) == ["label", "probabilities"])
        #expect(try hub.models.show(VersionedName(name: "iris", version: 1)) == model)

        let module = try hub.modules.package(PackageRequest(name: "iris-onnx", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1)))
        #expect(module.kind == .onnx)
        #expect(module.manifest.kind == .onnx)
        #expect(module.manifest.entry == "model/iris.onnx")
        #expect(module.manifest.requirements == NoCodeModels.onnxPins)
        #expect(module.manifest.files.map(\.path) == ["model/iris.onnx"])
    }

    @Test func anONNXFileOnnxruntimeCannotLoadIsRefusedWithItsReason() throws {
        // Starts as ONNX does (ir_version), then is not a model.
        let path = try hub.write("broken/broken.onnx", "\u{08}\u{08}not a protobuf graph at all")
        let model = try hub.models.register(name: "broken", paths: [path])
        #expect(model.flavour == .onnx)
        #expect(model.signature == nil)
        do {
            try hub.modules.package(PackageRequest(name: "broken", kind: .pythonScoring, model: VersionedName(name: "broken", version: 1)))
            Issue.record("packaging an ONNX file onnxruntime cannot load must fail")
        } catch let error as RegistryError {
            guard case .invalidModel(_, let reason) = error else { throw error }
            #expect(reason.contains("onnxruntime cannot load it"), "\(reason)")
            #expect(reason.contains("ONNXRuntimeError") || reason.contains("protobuf"), "\(reason)")
        }
        #expect(try hub.modules.list().isEmpty)
    }

    @Test func anMLflowFolderBecomesAnMlflowModuleWithTheModelsRequirements() throws {
        let folder = try NoCodeModels.mlflowModel(in: hub.directory.url)
        let model = try hub.models.register(name: "iris-mlflow", paths: [folder.path])
        #expect(model.flavour == .mlflow)
        #expect(model.signature?.inputs == [TensorSpec(name: "input-0", datatype: "FP64", shape: [-1, 4])])
        #expect(model.signature?.outputs == [TensorSpec(name: "output-0", datatype: "INT64", shape: [-1])])

        let module = try hub.modules.package(PackageRequest(name: "iris-mlflow", kind: .pythonScoring, model: VersionedName(name: "iris-mlflow", version: 1)))
        #expect(module.kind == .mlflow)
        #expect(module.manifest.entry == "model/iris-mlflow")
        let saved = try String(contentsOf: folder.appending(path: "requirements.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        // The model's own requirements, MLflow as its skinny distribution of the same version.
        #expect(module.manifest.requirements == saved.map { $0.hasPrefix("mlflow==") ? "mlflow-skinny" + $0.dropFirst("mlflow".count) : $0 })
        #expect(module.manifest.requirements.contains { $0.hasPrefix("mlflow-skinny==") })
        #expect(module.manifest.requirements.contains { $0.hasPrefix("scikit-learn==") })
    }

    @Test func aModelWithNoFlavourNeedsAScript() throws {
        try hub.models.register(name: "weights", paths: [hub.write("weights.bin", "w")])
        #expect(try hub.models.show(VersionedName(name: "weights", version: 1)).flavour == nil)
        #expect(throws: RegistryError.self) {
            try hub.modules.package(PackageRequest(name: "w", kind: .pythonScoring, model: VersionedName(name: "weights", version: 1)))
        }
        #expect(try hub.modules.list().isEmpty)
    }

    @Test func vendoredWheelsHoldThePinnedOnnxruntime() throws {
        let onnx = try NoCodeModels.irisONNX(in: hub.directory.url)
        try hub.models.register(name: "iris", paths: [onnx.path])
        let module = try hub.modules.package(PackageRequest(
            name: "iris-onnx", kind: .pythonScoring, model: VersionedName(name: "iris", version: 1), vendorWheels: true))
        let wheels = module.manifest.files.map(\.path).filter { $0.hasPrefix("wheels/") }
        let version = NoCodeModels.onnxPins[0].split(separator: "=").last.map(String.init) ?? ""
        #expect(wheels.contains { $0.hasPrefix("wheels/onnxruntime-\(version)-") }, "\(wheels)")
        #expect(wheels.contains { $0.hasPrefix("wheels/numpy-") })
    }
}

/// The real models the no-code tests package, made with the hub's Python (`python3` on PATH,
/// the test venv under scripts/test).
enum NoCodeModels {
    static let python = ProcessInfo.processInfo.environment["FLEETHUB_PYTHON"] ?? Fixtures.which("python3") ?? "python3"

    static let shouldRun: Bool = {
        Fixtures.isCI || (try? Fixtures.run(python, ["-c", "import onnxruntime, skl2onnx, mlflow.sklearn"])) != nil
    }()

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `onnxruntime==V`, `numpy==V` of the hub's Python.
    static let onnxPins: [String] = {
        let output = (try? Fixtures.run(python, ["-c", "import numpy, onnxruntime; print(onnxruntime.__version__, numpy.__version__)"])) ?? ""
        let versions = output.split(whereSeparator: \.isWhitespace).map(String.init)
        return versions.count == 2 ? ["onnxruntime==\(versions[0])", "numpy==\(versions[1])"] : []
    }()

    /// The iris example model, trained by examples/iris/train.py into `directory/iris/iris.onnx`.
    static func irisONNX(in directory: URL) throws -> URL {
        let output = directory.appending(path: "iris/iris.onnx")
        try Fixtures.run(python, [repositoryRoot.appending(path: "examples/iris/train.py").path, "--out", output.path])
        return output
    }

    /// A scikit-learn classifier saved with `mlflow.sklearn.save_model` (with a signature) as `directory/iris-mlflow`.
    static func mlflowModel(in directory: URL) throws -> URL {
        let folder = directory.appending(path: "iris-mlflow")
        try Fixtures.run(python, [
            "-c",
            """
            import sys, mlflow.sklearn
            from mlflow.models import infer_signature
            from sklearn.datasets import load_iris
            from sklearn.linear_model import LogisticRegression
            features, labels = load_iris(return_X_y=True)
            model = LogisticRegression(max_iter=1000).fit(features, labels)
            mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(features, model.predict(features)))
            """,
            folder.path,
        ])
        return folder
    }
}
