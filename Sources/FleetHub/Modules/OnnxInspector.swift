import FleetCore
import Foundation

/// Loads an ONNX file with onnxruntime in the hub's Python (`$FLEETHUB_PYTHON`, else
/// `python3`, as for `--vendor-wheels`) to read its graph's inputs and outputs and the
/// onnxruntime and numpy versions the module's environment is pinned to.
enum OnnxInspector {
    struct Description: Decodable {
        var inputs: [TensorSpec]
        var outputs: [TensorSpec]
        var requirements: [String]
    }

    /// Whether the file starts as an ONNX model does (a protobuf `ModelProto`, whose first
    /// field is `ir_version`: tag byte 0x08), so registering other files starts no Python.
    static func looksLikeONNX(_ file: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 1)) == Data([0x08])
    }

    /// Throws `RegistryError.invalidModel` with onnxruntime's reason when it cannot load
    /// the file or the graph has an input or output that is not a tensor.
    static func describe(_ file: URL, as path: String) throws -> Description {
        let python = PythonTool.python
        let completed: ProcessSpawner.Completed
        do {
            completed = try PythonTool.run(["-c", script, file.path], separateErrors: true)
        } catch {
            throw RegistryError.invalidModel(path, reason: "cannot start \(python) to load it with onnxruntime: \(error)")
        }
        let data = Data(completed.output.utf8)
        let message = completed.errors.trimmingCharacters(in: .whitespacesAndNewlines)
        switch completed.status.code {
        case 0:
            guard let description = try? JSONDecoder().decode(Description.self, from: data) else {
                throw RegistryError.invalidModel(path, reason: "the onnxruntime check printed no description: \(message)")
            }
            return description
        case 3:
            throw RegistryError.invalidModel(
                path, reason: "\(python) has no onnxruntime (\(message)); install it (pip install onnxruntime) or set FLEETHUB_PYTHON")
        default:
            throw RegistryError.invalidModel(path, reason: "onnxruntime cannot load it: \(String(message.suffix(2000)))")
        }
    }

    private static let script = """
        import json, sys
        try:
            import numpy, onnxruntime
        except ImportError as error:
            print(error, file=sys.stderr)
            sys.exit(3)
        TYPES = {"tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32",
                 "tensor(uint64)": "UINT64", "tensor(int8)": "INT8", "tensor(int16)": "INT16", "tensor(int32)": "INT32",
                 "tensor(int64)": "INT64", "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
                 "tensor(string)": "BYTES"}
        try:
            session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        except Exception as error:
            print(error, file=sys.stderr)
            sys.exit(2)
        def tensors(nodes, role):
            specs = []
            for node in nodes:
                if node.type not in TYPES:
                    print(f"its {role} {node.name} is a {node.type}, not a tensor; the runtime serves tensors only "
                          "(for scikit-learn classifiers, export with options={'zipmap': False})", file=sys.stderr)
                    sys.exit(2)
                specs.append({"name": node.name, "datatype": TYPES[node.type],
                              "shape": [d if isinstance(d, int) else -1 for d in node.shape]})
            return specs
        print(json.dumps({"inputs": tensors(session.get_inputs(), "input"), "outputs": tensors(session.get_outputs(), "output"),
                          "requirements": [f"onnxruntime=={onnxruntime.__version__}", f"numpy=={numpy.__version__}"]}))
        """
}
