"""No-code models for the scoring host: an ONNX file served with onnxruntime, an MLflow
model folder (``MLmodel``, pyfunc flavour) served with ``mlflow.pyfunc``. No ``score.py``:
the inputs and outputs come from the ONNX graph or the MLflow signature.

Both answer ``POST /v1/modules/{name}/score`` with ``{"data": rows}`` (a model with one
input) or ``{"inputs": {"X": rows, ...}}``, and Open Inference (V2) infer requests.
"""

import json
import os

import open_inference
from open_inference import BadTensor

ONNX_DATATYPES = {
    "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64", "tensor(int8)": "INT8", "tensor(int16)": "INT16", "tensor(int32)": "INT32",
    "tensor(int64)": "INT64", "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

NUMPY_TYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
    "FP32": "float32", "FP64": "float64", "BYTES": "object",
}

MLFLOW_DATATYPES = {
    "boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64", "string": "BYTES",
    "bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8",
    "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64", "float16": "FP16", "float32": "FP32",
    "float64": "FP64", "str": "BYTES", "object": "BYTES",
}


class Rejected(Exception):
    """A /v1 body the model cannot take (400)."""


def tensors_of(nodes, role):
    specs = []
    for node in nodes:
        datatype = ONNX_DATATYPES.get(node.type)
        if datatype is None:
            raise TypeError(
                f"the ONNX {role} {node.name} is a {node.type}, not a tensor; only tensor inputs and outputs are served "
                "(for scikit-learn classifiers, export with options={'zipmap': False})")
        shape = [d if isinstance(d, int) else -1 for d in node.shape]
        specs.append({"name": node.name, "datatype": datatype, "shape": shape})
    return specs


def onnx_session(path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class NoCodeModel:
    """What both flavours share: the /v1 body and the V2 request, checked against the
    declared inputs, become arrays; the outputs come back by name."""

    platform = ""
    inputs = []
    outputs = []

    def metadata(self):
        return {"platform": self.platform, "inputs": self.inputs, "outputs": self.outputs}

    def score(self, body):
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise Rejected(f"the body is not JSON: {error}") from None
        names = [spec["name"] for spec in self.inputs]
        if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
            given = document["inputs"]
        elif isinstance(document, dict) and "data" in document:
            if len(names) != 1:
                raise Rejected(
                    f"the model has {len(names)} inputs ({', '.join(names)}); send {{\"inputs\": {{\"{names[0]}\": rows, ...}}}}")
            given = {names[0]: document["data"]}
        else:
            raise Rejected(f"send {{\"data\": rows}} or {{\"inputs\": {{\"{names[0] if names else 'X'}\": rows}}}}")
        for name in given:
            if name not in names:
                raise Rejected(f"input {name}: the model has no such input; its inputs are {', '.join(names)}")
        for name in names:
            if name not in given:
                raise Rejected(f"input {name} is missing; the model takes {', '.join(names)}")
        arrays = {}
        for spec in self.inputs:
            arrays[spec["name"]] = self.array(spec, given[spec["name"]], Rejected)
        return {name: to_list(value) for name, value in self.predict(arrays).items()}

    def infer(self, request, meta):
        tensors = open_inference.read_inputs(request, self.inputs)
        specs = {spec["name"]: spec for spec in self.inputs}
        arrays = {t.name: self.tensor(specs[t.name], t) for t in tensors}
        results = self.predict(arrays)
        names = open_inference.requested_outputs(request, list(results))
        outputs = [open_inference.output(name, self.v2_value(results[name])) for name in names]
        return open_inference.response(request, meta, outputs)

    def v2_value(self, value):
        return value

    @staticmethod
    def tensor(spec, tensor):
        """A V2 input (already checked against ``spec``) as an array of the model's dtype."""
        import numpy

        return numpy.asarray(tensor.data, dtype=NUMPY_TYPES[spec["datatype"]]).reshape(tensor.shape)

    @staticmethod
    def array(spec, rows, failure):
        import numpy

        try:
            array = numpy.asarray(rows, dtype=NUMPY_TYPES[spec["datatype"]])
        except (TypeError, ValueError) as error:
            raise failure(f"input {spec['name']}: the data is not {spec['datatype']} in a regular shape ({error})") from None
        if spec.get("shape") is not None and not open_inference.fits(list(array.shape), spec["shape"]):
            raise failure(
                f"input {spec['name']}: shape {list(array.shape)}, but the model takes {spec['shape']} (-1: any size)")
        return array


def to_list(value):
    if hasattr(value, "to_dict"):
        return value.to_dict(orient="records")
    return value.tolist() if hasattr(value, "tolist") else value


class OnnxModel(NoCodeModel):
    platform = "onnxruntime_onnx"

    def __init__(self, path):
        self.session = onnx_session(path)
        self.inputs = tensors_of(self.session.get_inputs(), "input")
        self.outputs = tensors_of(self.session.get_outputs(), "output")
        self.output_names = [spec["name"] for spec in self.outputs]

    def predict(self, arrays):
        return dict(zip(self.output_names, self.session.run(self.output_names, arrays)))


def mlflow_tensors(schema, prefix):
    """An MLflow signature's inputs or outputs as V2 tensors: a tensor spec keeps its shape
    (``{prefix}-N`` when unnamed, as MLServer names them); a column is a 1-D tensor."""
    if schema is None:
        return None
    specs = []
    for index, item in enumerate(schema.to_dict()):
        if item.get("type") == "tensor":
            spec = item["tensor-spec"]
            specs.append({
                "name": item.get("name") or f"{prefix}-{index}",
                "datatype": MLFLOW_DATATYPES.get(spec["dtype"], "BYTES"),
                "shape": [int(d) for d in spec["shape"]],
            })
        else:
            specs.append({
                "name": item.get("name") or f"{prefix}-{index}",
                "datatype": MLFLOW_DATATYPES.get(item.get("type"), "BYTES"),
                "shape": [-1],
            })
    return specs


class MlflowModel(NoCodeModel):
    platform = "mlflow"

    def __init__(self, path):
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(path)
        signature = self.model.metadata.signature
        if signature is None or signature.inputs is None:
            raise ValueError(
                f"the MLflow model at {path} has no signature; save it with signature=infer_signature(X, y) "
                "so the runtime knows its inputs")
        self.columns = not signature.inputs.is_tensor_spec()
        self.inputs = mlflow_tensors(signature.inputs, "input")
        self.outputs = mlflow_tensors(signature.outputs, "output") or [{"name": "output-0", "datatype": "BYTES", "shape": [-1]}]

    def predict(self, arrays):
        """``pyfunc.predict`` on a DataFrame of the columns, the one tensor, or the named tensors;
        its result by output name."""
        if self.columns:
            import pandas

            data = pandas.DataFrame({name: array.reshape(-1) for name, array in arrays.items()})
        elif len(arrays) == 1:
            data = next(iter(arrays.values()))
        else:
            data = arrays
        result = self.model.predict(data)
        if isinstance(result, dict):
            return result
        if hasattr(result, "columns"):
            return {str(column): result[column].to_numpy() for column in result.columns}
        return {self.outputs[0]["name"]: result}

    def score(self, body):
        """As MLflow's own scoring server answers: ``{"predictions": …}``."""
        results = super().score(body)
        return {"predictions": next(iter(results.values())) if len(results) == 1 else results}

    def v2_value(self, value):
        return batch_column(value)


def batch_column(value):
    """A 1-D prediction as a column ``[n, 1]``, as MLServer answers an MLflow model."""
    import numpy

    array = numpy.asarray(value)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def load(kind, module_dir, entry):
    path = os.path.join(module_dir, entry)
    if kind == "onnx":
        return OnnxModel(path)
    if kind == "mlflow":
        return MlflowModel(path)
    raise ValueError(f"unknown no-code module kind {kind!r}")
