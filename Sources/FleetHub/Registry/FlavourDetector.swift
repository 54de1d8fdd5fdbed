import FleetCore
import Foundation
import Yams

/// Finds a registered model's flavour from its files: one `.onnx` file, or a folder with
/// an `MLmodel`; reads an MLflow model's signature and requirements from its files.
enum FlavourDetector {
    /// The flavour and, where it lies in the model's files, the path inside the model
    /// of what the runtime loads (the `.onnx` file, the folder holding `MLmodel`).
    static func detect(_ paths: [String]) -> (flavour: ModelFlavour, path: String)? {
        if let mlmodel = paths.filter({ $0 == "MLmodel" || $0.hasSuffix("/MLmodel") }).min(by: { $0.count < $1.count }) {
            let folder = String(mlmodel.dropLast("MLmodel".count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            return (.mlflow, folder.isEmpty ? "." : folder)
        }
        if paths.count == 1, paths[0].lowercased().hasSuffix(".onnx") { return (.onnx, paths[0]) }
        return nil
    }

    /// An MLflow `MLmodel` file's pyfunc check and signature. Throws when the model has no
    /// `python_function` flavour (the runtime serves it with `mlflow.pyfunc`).
    static func mlflowSignature(mlmodel: URL) throws -> ModelSignature? {
        let text: String
        do {
            text = try String(contentsOf: mlmodel, encoding: .utf8)
        } catch {
            throw RegistryError.unreadablePath(mlmodel.path, reason: error.localizedDescription)
        }
        guard let document = try? Yams.load(yaml: text) as? [String: Any] else {
            throw RegistryError.invalidModel(mlmodel.path, reason: "MLmodel is not a YAML mapping")
        }
        let flavours = document["flavors"] as? [String: Any] ?? [:]
        guard flavours["python_function"] != nil else {
            throw RegistryError.invalidModel(
                mlmodel.path,
                reason: "the MLflow model has no python_function (pyfunc) flavour, only \(flavours.keys.sorted().joined(separator: ", ")); "
                    + "save it with an MLflow flavour that adds pyfunc (mlflow.sklearn, mlflow.pyfunc, …)")
        }
        guard let signature = document["signature"] as? [String: Any] else { return nil }
        return ModelSignature(
            inputs: try tensors(signature["inputs"], prefix: "input", in: mlmodel),
            outputs: try tensors(signature["outputs"], prefix: "output", in: mlmodel))
    }

    /// MLflow's column and tensor specs as tensors, named as the runtime names them.
    private static func tensors(_ field: Any?, prefix: String, in mlmodel: URL) throws -> [TensorSpec] {
        guard let json = field as? String else { return [] }
        guard let items = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else {
            throw RegistryError.invalidModel(mlmodel.path, reason: "its signature's \(prefix)s are not a JSON list")
        }
        return items.enumerated().map { index, item in
            let name = item["name"] as? String ?? "\(prefix)-\(index)"
            if item["type"] as? String == "tensor", let spec = item["tensor-spec"] as? [String: Any] {
                return TensorSpec(
                    name: name, datatype: datatype(spec["dtype"] as? String),
                    shape: (spec["shape"] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.intValue })
            }
            return TensorSpec(name: name, datatype: datatype(item["type"] as? String), shape: [-1])
        }
    }

    /// MLflow's type names (column types and numpy dtypes) as Open Inference datatypes.
    private static func datatype(_ type: String?) -> String {
        let types = [
            "boolean": "BOOL", "bool": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
            "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8", "uint16": "UINT16",
            "uint32": "UINT32", "uint64": "UINT64", "float16": "FP16", "float32": "FP32", "float64": "FP64",
        ]
        return type.flatMap { types[$0] } ?? "BYTES"
    }

    /// The MLflow model's pip requirements (its `requirements.txt`), with `mlflow` as
    /// `mlflow-skinny` of the same version: the device only loads the model, and skinny
    /// is MLflow without its tracking server and UI.
    static func mlflowRequirements(_ file: URL) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw RegistryError.invalidModel(
                file.deletingLastPathComponent().path,
                reason: "it has no requirements.txt (\(error.localizedDescription)); save it with MLflow ≥ 1.26, which writes one")
        }
        return text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("-") }
            .map { line in
                let name = line.prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
                return name.lowercased() == "mlflow" ? "mlflow-skinny" + line.dropFirst(name.count) : line
            }
    }
}
