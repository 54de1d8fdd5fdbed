import FleetCore
import Foundation

/// What kind of model a registered version is, when the runtime can serve it with no
/// `score.py` (`fleethub module package` without `--entry`): an ONNX file (onnxruntime)
/// or an MLflow model folder with the pyfunc flavour (`mlflow.pyfunc`).
public enum ModelFlavour: String, Codable, Sendable {
    case onnx
    case mlflow

    /// The module kind that serves a model of this flavour.
    public var moduleKind: ModuleKind {
        switch self {
        case .onnx: .onnx
        case .mlflow: .mlflow
        }
    }
}

/// A model's inputs and outputs, from its ONNX graph or its MLflow signature, in Open
/// Inference terms (the device's `/v2/models/{name}` answers the same).
public struct ModelSignature: Codable, Equatable, Sendable {
    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]

    public init(inputs: [TensorSpec], outputs: [TensorSpec]) {
        self.inputs = inputs
        self.outputs = outputs
    }
}
