import FleetCore
import Foundation

/// What a scoring module's workers say about its model once `init()` returned, for the
/// Open Inference model metadata route: the platform (`onnxruntime_onnx`, `mlflow`,
/// `python`) and its inputs and outputs — taken from the ONNX graph or the MLflow
/// signature; none for a `score.py`, whose `run` declares no tensors.
public struct ModelMetadata: Codable, Equatable, Sendable {
    public var platform: String
    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]

    public init(platform: String, inputs: [TensorSpec], outputs: [TensorSpec]) {
        self.platform = platform
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The `R` frame's JSON; a worker that sent none describes no tensors.
    init(json: [UInt8]) {
        self = (try? JSONDecoder().decode(Self.self, from: Data(json)))
            ?? ModelMetadata(platform: "python", inputs: [], outputs: [])
    }
}
