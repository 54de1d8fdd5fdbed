"""Scoring host: runs one Azure ML style ``score.py`` for the edge runtime.

The runtime starts one of these per worker of a ``python-scoring`` module, in the
module's venv. It follows the Azure ML scoring contract, so an existing
``score.py`` works unchanged:

* ``AZUREML_MODEL_DIR`` and ``MODEL_DIR`` name the unpacked model folder;
* the entry script is imported from the module folder (which is also the working
  directory and first on ``sys.path``) and ``init()`` is called once;
* ``run(raw_data)`` is called for each request with the request body as a string;
  its result is serialised to JSON (dicts, lists, strings, numbers, and numpy
  arrays and scalars).

The runtime talks to this process over one Unix stream socket passed as a file
descriptor, with length-prefixed frames: a 4-byte big-endian length, then a
one-byte kind, then the payload.

  runtime -> host   ``Q`` + request body (UTF-8)
  host -> runtime   ``R`` (ready: ``init()`` returned)
                    ``I`` + JSON {"type", "message", "traceback"} (``init()`` raised; the host exits 3)
                    ``O`` + JSON result (``run`` returned)
                    ``E`` + JSON {"type", "message", "traceback"} (``run`` raised; the host stays up)

Standard output goes where the runtime sends the worker's log, never into the channel.
"""

import argparse
import importlib.util
import json
import os
import socket
import struct
import sys
import traceback

HEADER = struct.Struct(">IB")


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
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)

    def send(self, kind, payload=b""):
        self.sock.sendall(HEADER.pack(len(payload) + 1, kind) + payload)

    def receive(self):
        """Returns (kind, payload), or None when the runtime closed the channel."""
        header = self._read_exactly(4)
        if header is None:
            return None
        (length,) = struct.unpack(">I", header)
        frame = self._read_exactly(length)
        if frame is None:
            return None
        return frame[0], frame[1:]

    def _read_exactly(self, count):
        chunks = []
        while count:
            chunk = self.sock.recv(count)
            if not chunk:
                return None
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)


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


def serve(channel, script):
    run = script.run
    dumps = json.dumps
    while True:
        message = channel.receive()
        if message is None:
            return
        _, body = message
        try:
            result = run(body.decode("utf-8"))
            payload = dumps(result, default=to_json_compatible).encode()
        except Exception as error:  # noqa: BLE001 - any exception of run() goes back to the caller
            channel.send(ord("E"), describe(error))
            continue
        channel.send(ord("O"), payload)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-dir", required=True)
    parser.add_argument("--entry", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    args = parser.parse_args()

    channel = Channel(args.channel_fd)
    os.environ["AZUREML_MODEL_DIR"] = args.model_dir
    os.environ["MODEL_DIR"] = args.model_dir
    os.chdir(args.module_dir)
    sys.path.insert(0, args.module_dir)
    try:
        script = load_entry_script(args.module_dir, args.entry)
        if callable(getattr(script, "init", None)):
            script.init()
    except BaseException as error:  # noqa: BLE001 - report any failure of init() before exiting
        traceback.print_exc()
        channel.send(ord("I"), describe(error))
        sys.exit(3)
    channel.send(ord("R"))
    serve(channel, script)


if __name__ == "__main__":
    main()
