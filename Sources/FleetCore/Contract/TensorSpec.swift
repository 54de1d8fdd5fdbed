import Foundation

/// One input or output of a model, in Open Inference (KServe V2) terms: the hub's
/// registry records a model's signature with it and the device's `/v2/models/{name}`
/// answers it, so both sides describe a tensor the same way.
public struct TensorSpec: Codable, Equatable, Sendable {
    public var name: String
    /// An Open Inference datatype: `BOOL`, `INT64`, `FP32`, `BYTES`, …
    public var datatype: String
    /// The sizes of its dimensions; -1 where any size goes (a batch).
    public var shape: [Int]

    public init(name: String, datatype: String, shape: [Int]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }

    /// `X FP32 [-1, 4]`, as the command lines print it.
    public var summary: String {
        "\(name) \(datatype) [\(shape.map(String.init).joined(separator: ", "))]"
    }
}
