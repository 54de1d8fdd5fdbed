"""Scoring host: runs one Azure ML style ``score.py`` for the edge runtime.

The runtime starts one of these per worker of a ``python-scoring`` module, in the
module's venv. It calls the script as Azure ML's own server (``azmlinfsrv``) does, so
an existing ``score.py`` works unchanged:

* the runtime sets ``AZUREML_MODEL_DIR``, ``MODEL_DIR`` and ``AML_APP_ROOT``;
* the entry script is imported from the module folder (which is also the working
  directory and first on ``sys.path``) and ``init()`` is called once;
* ``run`` is called per request, chosen once from its signature (see ``Caller``): an
  undecorated ``run(raw_data)`` gets the body as a string; a ``run`` decorated with
  inference-schema's ``@input_schema`` gets the JSON body's members by name; a ``run``
  that declares ``request_headers`` also gets the request's headers; a ``run`` with
  azmlinfsrv's ``@rawhttp`` gets the request as a Flask request;
* its result is serialised to JSON (dicts, lists, strings, numbers, and numpy arrays
  and scalars; ``None`` is ``{}``, as azmlinfsrv answers it), except an HTTP response
  of its own (azmlinfsrv's ``AMLResponse``), which goes back as it is.

The runtime talks to this process over one Unix stream socket passed as a file
descriptor, with length-prefixed frames: a 4-byte big-endian length, then a
one-byte kind, then the payload.

  runtime -> host   ``Q`` + 4-byte big-endian length + the request headers as HTTP/1
                    lines (``name: value\r\n`` each) + request body
                    ``V`` + 4-byte big-endian length + JSON {"model_name", "model_version"}
                    + an Open Inference (V2) infer request's body
  host -> runtime   ``R`` + JSON {"platform", "inputs", "outputs"} (ready: ``init()`` returned;
                    the model's V2 metadata, no inputs or outputs declared for a ``score.py``)
                    ``I`` + JSON {"type", "message", "traceback"} (``init()`` raised; the host exits 3)
                    ``O`` + JSON result (``run`` returned; for ``V``, the V2 infer response)
                    ``H`` + 4-byte big-endian length + JSON {"status", "headers": [[name, value], ...]}
                    + body (``run`` returned an HTTP response of its own)
                    ``E`` + JSON {"type", "message", "traceback"} (``run`` raised; the host stays up)
                    ``B`` + JSON {"status", "message"} (the request was refused before ``run``:
                    400 or 415 with azmlinfsrv's message, or 500 for a body that is not text;
                    for ``V``, 400 naming the input that does not fit)

A no-code module (``--kind onnx`` or ``mlflow``, ``--entry`` the model file or folder) has
no ``score.py``: ``no_code.py`` serves the model with onnxruntime or ``mlflow.pyfunc``.

Standard output goes where the runtime sends the worker's log, never into the channel.
"""

import argparse
import importlib.util
import inspect
import json
import os
import socket
import struct
import sys
import traceback

import no_code
import open_inference

HEADER = struct.Struct(">IB")
LENGTH = struct.Struct(">I")


def to_json_compatible(value):
    """``json.dumps`` fallback for numpy arrays/scalars and other array-likes."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"run() returned a {type(value).__name__}, which is not JSON serialisable")


def describe(error):
    return json.dumps({
        "type": type(error).__name__,
        "message": str(error),
        "traceback": traceback.format_exc(),
    }).encode()


class Channel:
    """The socket to the runtime. Reads take whatever has arrived, so a request frame
    usually costs one ``recv``."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.pending = b""

    def send(self, kind, payload=b""):
        self.sock.sendall(HEADER.pack(len(payload) + 1, kind) + payload)

    def receive(self):
        """Returns (kind, payload), or None when the runtime closed the channel."""
        pending = self.pending
        while len(pending) < 4 or len(pending) < 4 + LENGTH.unpack_from(pending)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            pending += chunk
        end = 4 + LENGTH.unpack_from(pending)[0]
        self.pending = pending[end:]
        return pending[4], pending[5:end]


def load_entry_script(module_dir, entry):
    path = os.path.join(module_dir, entry)
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(entry))[0], path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load entry script {path}")
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    if not callable(getattr(script, "run", None)):
        raise AttributeError(f"{entry} defines no run(raw_data) function")
    return script


class Rejected(Exception):
    """A request refused before ``run``, as azmlinfsrv refuses it: its status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message

    def describe(self):
        return json.dumps({"status": self.status, "message": self.message}).encode()


def is_schema_decorated(run):
    """Whether inference-schema's decorators wrap ``run``, asked of inference-schema itself
    as azmlinfsrv asks it. A script that uses the decorators has imported it; the host
    never imports it on its own, so a script that does not use it needs no such package."""
    schema_util = sys.modules.get("inference_schema.schema_util")
    return schema_util is not None and schema_util.is_schema_decorated(run)


def asks_for_raw_request():
    """Whether ``run`` carries azmlinfsrv's ``@rawhttp`` (which sets a flag in its module)."""
    aml_request = sys.modules.get("azureml_inference_server_http.api.aml_request")
    return bool(getattr(aml_request, "_rawHttpRequested", False))


def flask_request(body, headers):
    """The request as azmlinfsrv hands it to a ``@rawhttp`` ``run``: a Flask request for
    ``POST /score``. Flask is there: ``@rawhttp`` comes from a package that needs it."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    fields = [(name, value) for name, value in headers.items() if name not in ("Content-Type", "Content-Length")]
    environ = EnvironBuilder(
        method="POST", path="/score", headers=fields, data=body, content_type=headers.get("Content-Type"))
    return Request(environ.get_environ())


def http_response(result):
    """``run``'s result as (status, headers, body) when it is an HTTP response of its own
    (azmlinfsrv's ``AMLResponse`` is a Flask one), which azmlinfsrv answers as it is; None
    for any other result. Only a script that imported werkzeug can return one."""
    wrappers = sys.modules.get("werkzeug.wrappers")
    if wrappers is None or not isinstance(result, wrappers.Response):
        return None
    headers = [[name, value] for name, value in result.headers.items() if name.lower() != "content-length"]
    return result.status_code, headers, result.get_data()


def is_json(content_type):
    """``Content-Type`` is JSON as Flask's ``request.is_json`` decides it."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def header_dict(lines):
    """The request's headers (HTTP/1 lines) as azmlinfsrv passes ``request_headers``: names
    in ``Title-Case`` as the WSGI server gives them, repeated headers joined by commas."""
    headers = {}
    for line in lines.decode("utf-8").split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(": ")
        key = name.title()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


class Caller:
    """Calls the script's ``run`` as azmlinfsrv does, decided once from its signature:

    * ``request_headers``, when declared, gets the request's headers as a dict;
    * with ``@rawhttp``: the first other parameter gets the Flask request;
    * decorated with ``@input_schema``: the body must be a JSON object (415 for another
      ``Content-Type``, 400 when it is not JSON or not an object, 500 when it is not even
      text, as azmlinfsrv answers); each other parameter gets the member of its name, or
      its default (400 when neither is there);
    * undecorated: the first other parameter gets the body as a string (400 when it is
      not UTF-8).
    """

    def __init__(self, run):
        parameters = list(inspect.signature(run).parameters.values())
        if any(p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters):
            raise TypeError("run() cannot accept positional-only arguments, *args, or **kwargs.")
        self.raw_http = asks_for_raw_request()
        if self.raw_http and is_schema_decorated(run):
            raise TypeError("run() cannot be decorated with both @rawhttp and @input_schema")
        self.run = run
        self.wants_headers = any(p.name == "request_headers" for p in parameters)
        inputs = [p for p in parameters if p.name != "request_headers"]
        if not inputs:
            raise TypeError(
                'run() needs to accept an argument other than "request_headers".' if self.wants_headers
                else "run() needs to accept an argument for input data.")
        self.named = inputs if is_schema_decorated(run) else None
        self.first = inputs[0].name
        # Only these read the headers; for the others they are not even parsed.
        self.needs_headers = self.raw_http or self.named is not None or self.wants_headers

    def __call__(self, body, headers):
        if self.raw_http:
            arguments = {self.first: flask_request(body, headers)}
        elif self.named is not None:
            arguments = self.members(body, headers)
        else:
            arguments = {self.first: self.text(body)}
        if self.wants_headers:
            arguments["request_headers"] = headers
        return self.run(**arguments)

    @staticmethod
    def text(body):
        try:
            return str(body, "utf-8")
        except UnicodeDecodeError as error:
            raise Rejected(400, f"Input cannot be decoded as UTF-8: {error}") from None

    def members(self, body, headers):
        if not is_json(headers.get("Content-Type", "")):
            raise Rejected(415, "Expects Content-Type to be application/json")
        try:
            document = json.loads(body)
        except json.JSONDecodeError as error:
            if body:
                raise Rejected(400, f"POST body could not be decoded as JSON: {error}") from None
            raise Rejected(400, "POST body is empty. Expecting a JSON dictionary.") from None
        except UnicodeDecodeError as error:
            # Not UTF-8, -16 or -32: azmlinfsrv fails on it as on a bug of its own (500).
            raise Rejected(500, f"the body is not text in an encoding JSON allows: {error}") from None
        if not isinstance(document, dict):
            raise Rejected(400, "POST body should be a JSON dictionary.")
        arguments = {}
        for parameter in self.named:
            value = document.get(parameter.name, parameter.default)
            if value is inspect.Parameter.empty:
                raise Rejected(400, f"A value is not provided for the {parameter.name!r} parameter.")
            arguments[parameter.name] = value
        return arguments


class ScriptInference:
    """A ``score.py`` served over V2: ``run`` gets, as a JSON body, one member per input named
    as the input, its data nested to its shape (``{"data": [[5.1, 3.5, 1.4, 0.2]]}`` for an
    input ``data`` of shape [1, 4]); a dict result is one output per member, anything else
    one output named ``output``."""

    def __init__(self, caller):
        self.caller = caller

    def metadata(self):
        return {"platform": "python", "inputs": [], "outputs": []}

    def infer(self, request, meta):
        tensors = open_inference.read_inputs(request)
        body = json.dumps({tensor.name: tensor.nested() for tensor in tensors}).encode()
        result = self.caller(body, {"Content-Type": "application/json"})
        if http_response(result) is not None:
            raise TypeError("run() returned an HTTP response, which an Open Inference request cannot carry")
        results = result if isinstance(result, dict) else {"output": result}
        names = open_inference.requested_outputs(request, list(results))
        return open_inference.response(request, meta, [open_inference.output(n, results[n]) for n in names])


class NoCodeScoring:
    """A no-code model's /v1 score: the body is its inputs (see ``no_code``)."""

    needs_headers = False

    def __init__(self, model):
        self.model = model

    def __call__(self, body, headers):
        try:
            return self.model.score(body)
        except no_code.Rejected as error:
            raise Rejected(400, str(error)) from None


def split_request(payload):
    """A ``Q`` frame's payload: (header lines, body bytes)."""
    end = 4 + LENGTH.unpack_from(payload)[0]
    return payload[4:end], payload[end:]


def infer(channel, inference, payload):
    """One V2 infer request (a ``V`` frame)."""
    (length,) = struct.unpack(">I", payload[:4])
    meta = json.loads(payload[4:4 + length])
    try:
        request = json.loads(payload[4 + length:])
        result = inference.infer(request, meta)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        channel.send(ord("B"), Rejected(400, f"the inference request is not JSON: {error}").describe())
        return
    except (open_inference.BadTensor, Rejected) as error:
        channel.send(ord("B"), Rejected(getattr(error, "status", 400), str(error)).describe())
        return
    except Exception as error:  # noqa: BLE001 - any exception of the model goes back to the caller
        channel.send(ord("E"), describe(error))
        return
    channel.send(ord("O"), json.dumps(result, default=to_json_compatible).encode())


def serve(channel, caller, inference):
    dumps = json.dumps
    while True:
        message = channel.receive()
        if message is None:
            return
        if message[0] == ord("V"):
            infer(channel, inference, message[1])
            continue
        head, body = split_request(message[1])
        headers = header_dict(head) if caller.needs_headers else {}
        try:
            result = caller(body, headers)
            response = http_response(result)
            if response is not None:
                status, fields, content = response
                meta = dumps({"status": status, "headers": fields}).encode()
                channel.send(ord("H"), struct.pack(">I", len(meta)) + meta + content)
                continue
            payload = b"{}" if result is None else dumps(result, default=to_json_compatible).encode()
        except Rejected as rejected:
            channel.send(ord("B"), rejected.describe())
            continue
        except Exception as error:  # noqa: BLE001 - any exception of run() goes back to the caller
            channel.send(ord("E"), describe(error))
            continue
        channel.send(ord("O"), payload)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-dir", required=True)
    parser.add_argument("--entry", required=True, help="the score.py, or the model of a no-code module")
    parser.add_argument("--kind", default="python-scoring", choices=["python-scoring", "onnx", "mlflow"])
    parser.add_argument("--channel-fd", type=int, required=True)
    args = parser.parse_args()

    channel = Channel(args.channel_fd)
    os.chdir(args.module_dir)
    sys.path.insert(0, args.module_dir)
    try:
        if args.kind == "python-scoring":
            script = load_entry_script(args.module_dir, args.entry)
            caller = Caller(script.run)
            if callable(getattr(script, "init", None)):
                script.init()
            inference = ScriptInference(caller)
        else:
            inference = no_code.load(args.kind, args.module_dir, args.entry)
            caller = NoCodeScoring(inference)
    except BaseException as error:  # noqa: BLE001 - report any failure of init() before exiting
        traceback.print_exc()
        channel.send(ord("I"), describe(error))
        sys.exit(3)
    channel.send(ord("R"), json.dumps(inference.metadata()).encode())
    serve(channel, caller, inference)


if __name__ == "__main__":
    main()
