"""Open Inference Protocol (KServe V2) tensors for the scoring host.

Reads the ``inputs`` of a V2 inference request (``{name, shape, datatype, data}``, data
flat in row-major order or nested) and writes the ``outputs`` of its response, checking
each input against the model's declared inputs when it has some. A request that does not
fit raises ``BadTensor`` naming the input; the runtime answers it with 400.

Pure Python: a ``score.py`` module's venv need not have numpy. Arrays with a ``dtype``
(numpy) are written with the datatype of that dtype.
"""

import math

# V2 datatype -> the Python values its JSON data holds.
DATATYPES = {
    "BOOL": (bool,),
    "UINT8": (int,), "UINT16": (int,), "UINT32": (int,), "UINT64": (int,),
    "INT8": (int,), "INT16": (int,), "INT32": (int,), "INT64": (int,),
    "FP16": (int, float), "FP32": (int, float), "FP64": (int, float),
    "BYTES": (str,),
}

# numpy dtype (kind, itemsize) -> V2 datatype; kinds O, U and S (objects, strings) are BYTES.
# (Looked up by kind and size: ``dtype.name`` costs tens of µs per call.)
NUMPY_DATATYPES = {
    ("b", 1): "BOOL", ("u", 1): "UINT8", ("u", 2): "UINT16", ("u", 4): "UINT32", ("u", 8): "UINT64",
    ("i", 1): "INT8", ("i", 2): "INT16", ("i", 4): "INT32", ("i", 8): "INT64",
    ("f", 2): "FP16", ("f", 4): "FP32", ("f", 8): "FP64",
}


class BadTensor(Exception):
    """A V2 request that does not fit: its message names the input and says what to send."""


def flatten(data):
    """Nested lists in row-major order, as one flat list."""
    if not isinstance(data, list):
        return [data]
    flat = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def nest(flat, shape):
    """A flat list as nested lists of ``shape`` (row-major)."""
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[index * step:(index + 1) * step], shape[1:]) for index in range(shape[0])]


def fits(shape, declared):
    """Whether ``shape`` matches a declared shape, where -1 is any size."""
    return len(shape) == len(declared) and all(d == -1 or d == s for s, d in zip(shape, declared))


class Tensor:
    """One input of a request: its name, shape, datatype and flat data."""

    def __init__(self, name, shape, datatype, data):
        self.name = name
        self.shape = shape
        self.datatype = datatype
        self.data = data

    def nested(self):
        return nest(self.data, self.shape)


def read_inputs(request, declared=None):
    """The request's inputs as ``Tensor``s, in the request's order. ``declared`` is the
    model's inputs as ``[{"name", "datatype", "shape"}]`` (shape with -1 for any size),
    or None when the model declares none (a ``score.py``)."""
    if not isinstance(request, dict):
        raise BadTensor("the inference request is not a JSON object; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadTensor("the inference request has no inputs; send \"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]")
    tensors = []
    for position, item in enumerate(inputs):
        tensors.append(read_input(item, position))
    if declared is not None:
        check_declared(tensors, declared)
    return tensors


def read_input(item, position):
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise BadTensor(f"inputs[{position}] has no name; each input is {{\"name\", \"shape\", \"datatype\", \"data\"}}")
    name = item["name"]
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadTensor(f"input {name}: shape must be a list of sizes (integers ≥ 0), not {shape!r}")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise BadTensor(f"input {name}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
    if "data" not in item:
        parameters = item.get("parameters") or {}
        if "binary_data_size" in parameters:
            raise BadTensor(f"input {name}: binary tensor data is not supported; send it as JSON (tritonclient: binary_data=False)")
        raise BadTensor(f"input {name} has no data")
    data = flatten(item["data"])
    count = math.prod(shape)
    if len(data) != count:
        raise BadTensor(f"input {name}: shape {shape} holds {count} values but data has {len(data)}")
    kinds = DATATYPES[datatype]
    for value in data:
        if type(value) not in kinds:
            raise BadTensor(f"input {name}: datatype {datatype} but data holds {type(value).__name__} {value!r}")
    return Tensor(name, shape, datatype, data)


def check_declared(tensors, declared):
    wanted = {spec["name"]: spec for spec in declared}
    given = {tensor.name for tensor in tensors}
    for tensor in tensors:
        spec = wanted.get(tensor.name)
        if spec is None:
            raise BadTensor(f"input {tensor.name}: the model has no such input; its inputs are {', '.join(wanted)}")
        if tensor.datatype != spec["datatype"]:
            raise BadTensor(f"input {tensor.name}: datatype {tensor.datatype}, but the model takes {spec['datatype']}")
        if spec.get("shape") is not None and not fits(tensor.shape, spec["shape"]):
            raise BadTensor(f"input {tensor.name}: shape {tensor.shape}, but the model takes {spec['shape']} (-1: any size)")
    for name in wanted:
        if name not in given:
            raise BadTensor(f"input {name} is missing; the model takes {', '.join(wanted)}")


def requested_outputs(request, available):
    """The names of the outputs the request asks for (all of ``available`` when it names none)."""
    outputs = request.get("outputs")
    if not outputs:
        return list(available)
    names = []
    for position, item in enumerate(outputs):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in available:
            raise BadTensor(f"outputs[{position}]: the model has no output {name!r}; its outputs are {', '.join(available)}")
        names.append(name)
    return names


def output(name, value):
    """One output of a response from an array (numpy, or nested lists) or a scalar."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "shape"):
        datatype = "BYTES" if dtype.kind in "OUS" else NUMPY_DATATYPES.get((dtype.kind, dtype.itemsize))
        if datatype is None:
            raise TypeError(f"output {name} has dtype {dtype}, which has no Open Inference datatype")
        data = value.ravel().tolist()
        if datatype == "BYTES":
            data = [item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item) for item in data]
        return {"name": name, "datatype": datatype, "shape": list(value.shape), "data": data}
    if hasattr(value, "tolist"):
        value = value.tolist()
    shape = shape_of(name, value)
    data = flatten(value)
    return {"name": name, "datatype": datatype_of(name, data), "shape": shape, "data": data}


def shape_of(name, value):
    if not isinstance(value, list):
        return [1]
    shape = []
    level = value
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    if len(flatten(value)) != math.prod(shape):
        raise TypeError(f"output {name} is a ragged list; every row must have the same length")
    return shape


def datatype_of(name, data):
    kinds = {type(item) for item in data}
    if not kinds or kinds <= {int}:
        return "INT64"
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int, float}:
        return "FP64"
    if kinds <= {str}:
        return "BYTES"
    raise TypeError(f"output {name} mixes {', '.join(sorted(k.__name__ for k in kinds))}; an output holds one datatype")


def response(request, meta, outputs):
    """The V2 inference response: ``model_name``, ``model_version``, the request's ``id``, ``outputs``."""
    body = {"model_name": meta["model_name"]}
    if meta.get("model_version"):
        body["model_version"] = meta["model_version"]
    if "id" in request:
        body["id"] = request["id"]
    body["outputs"] = outputs
    return body
