#!/usr/bin/env python3
"""Packaging a large model: `fleethub module package` of an N-MB model (random bytes,
so nothing compresses it away), then the same inputs again, against `sha256sum` of the
model file, the floor for anything that must read it.

    python3 benchmarks/packaging/run.py --megabytes 300 --bin .build-release/release

Prints one JSON object."""
import argparse, json, os, subprocess, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(command):
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--bin", default=os.path.join(root, ".build", "release"))
    args = parser.parse_args()
    fleethub = os.path.join(args.bin, "fleethub")
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as work:
        workspace = os.path.join(work, "hub")

        def hub(*arguments):
            return [fleethub, *arguments, "--workspace", workspace]

        model = os.path.join(work, "model.onnx")
        with open(model, "wb") as f:
            for _ in range(args.megabytes):
                f.write(os.urandom(1 << 20))
        source = os.path.join(work, "src")
        os.makedirs(source)
        open(os.path.join(source, "score.py"), "w").write("def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n")
        subprocess.run(hub("init", "--insecure", "--broker", "mqtt://127.0.0.1:1883", "--public-url", "http://127.0.0.1:8080", "--insecure-http"),
                       check=True, capture_output=True)
        sha256sum, _ = timed(["sha256sum", model])
        register, _ = timed(hub("model", "register", "--name", "big", "--path", model))
        package = hub("module", "package", "--name", "big-scorer", "--model", "big:1", "--entry", "score.py", "--source", source)
        first, first_out = timed(package)
        again, again_out = timed(package)
        assert first_out == again_out, (first_out, again_out)
        print(json.dumps({
            "modelMegabytes": args.megabytes,
            "sha256sumSeconds": round(sha256sum, 2),
            "modelRegisterSeconds": round(register, 2),
            "packageSeconds": round(first, 2),
            "repackageIdenticalSeconds": round(again, 2),
            "module": first_out.strip(),
        }, indent=2))


if __name__ == "__main__":
    main()
