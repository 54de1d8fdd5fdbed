#!/usr/bin/env python3
"""Runtime benchmark: time from `fleethub deploy` to the module processes running (bundle
not cached, then cached), and the runtime's RSS, PSS and thread count while it
supervises three modules (with its local API, MQTT session, telemetry buffer and
health reporter running), and the RSS of `edge-runtime --help` and `status`.

Run from the repository root after building:
    swift build                                            # fleethub
    swift build -c release --static-swift-stdlib --product edge-runtime
    python3 benchmarks/runtime/run.py [--runtime .build/release/edge-runtime] [--fleethub …]
Everything runs on loopback in a fresh temp folder: a mosquitto, `fleethub serve` (plain
MQTT, so `fleethub init --insecure`), and `edge-runtime run`. Prints one JSON object
with the measurements (memory in KiB).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    raise TimeoutError("condition not met in %s s" % timeout)


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def memory_kib(pid):
    """RSS and thread count from /proc/PID/status, PSS from smaps_rollup (KiB)."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    with open("/proc/%d/smaps_rollup" % pid) as f:
        pss = next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    return int(fields["VmRSS"][0]), pss, int(fields["Threads"][0])


def peak_rss_kib(command):
    """The peak RSS of a short command (its VmHWM, via GNU time's %M)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command],
                            capture_output=True, text=True)
    return int(result.stderr.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default=os.path.join(ROOT, ".build/release/edge-runtime"))
    parser.add_argument("--fleethub", default=os.path.join(ROOT, ".build/debug/fleethub"))
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="runtime-bench-")
    processes = []
    try:
        mqtt_port, http_port = free_port(), free_port()
        with open(os.path.join(tmp, "mosquitto.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % mqtt_port)
        processes.append(subprocess.Popen(["mosquitto", "-c", os.path.join(tmp, "mosquitto.conf")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: listening(mqtt_port))
        workspace = os.path.join(tmp, "hub")

        def hub(*arguments):
            return subprocess.run([args.fleethub, *arguments, "--workspace", workspace],
                                  check=True, capture_output=True, text=True).stdout

        hub("init", "--insecure", "--broker", "mqtt://127.0.0.1:%d" % mqtt_port,
            "--public-url", "http://127.0.0.1:%d" % http_port, "--insecure-http")
        for index in range(3):
            source = os.path.join(tmp, "agent%d" % index)
            os.makedirs(source)
            with open(os.path.join(source, "run.sh"), "w") as f:
                f.write("echo agent %d up\nwhile true; do sleep 1; done\n" % index)
            hub("module", "package", "--name", "agent%d" % index, "--kind", "process",
                "--command", "/bin/sh run.sh", "--source", source)
        config = os.path.join(tmp, "gw-001.yaml")
        hub("device", "add", "gw-001", "--out", config)
        data_dir = os.path.join(tmp, "device")
        with open(config, "a") as f:
            f.write("dataDir: %s\n" % data_dir)
        processes.append(subprocess.Popen([args.fleethub, "serve", "--http", "127.0.0.1:%d" % http_port,
                                           "--workspace", workspace],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: listening(http_port))
        runtime = subprocess.Popen([args.runtime, "run", "--config", config, "--rollback-window", "5"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(runtime)

        def status():
            out = subprocess.run([args.runtime, "status", "--json", "--config", config],
                                 capture_output=True, text=True).stdout
            return json.loads(out) if out else None

        def deploy(name, modules, expect):
            manifest = os.path.join(tmp, name + ".yaml")
            with open(manifest, "w") as f:
                f.write("name: %s\npriority: 1\ntarget: \"*\"\nmodules:\n" % name)
                for module, bundle in modules:
                    f.write("  - name: %s\n    bundle: %s\n" % (module, bundle))
            started = time.monotonic()
            hub("deploy", manifest)

            def running():
                state = status()
                if not state:
                    return False
                up = {m["name"]: m for m in state["modules"] if m["status"] == "running" and m.get("pid")}
                return all(name in up and up[name]["bundleDigest"] == digest for name, digest in expect)
            wait_for(running)
            return time.monotonic() - started

        results = {"runtime": args.runtime}
        modules = [("agent%d" % i, "agent%d:1" % i) for i in range(3)]

        def digest_of(name):
            return json.loads(hub("module", "show", name + ":1", "--json"))["digest"]

        results["deployToRunningUncachedSeconds"] = round(deploy("three", modules, [(name, digest_of(name)) for name, _ in modules]), 3)
        # The same bundles under other module names: cached and unpacked already.
        renamed = [("again%d" % i, "agent%d:1" % i) for i in range(3)]
        results["deployToRunningCachedSeconds"] = round(deploy("three", renamed, [
            ("again%d" % i, digest_of("agent%d" % i)) for i in range(3)]), 3)
        time.sleep(5)
        if runtime.poll() is not None:
            raise RuntimeError("edge-runtime exited with %s" % runtime.returncode)
        rss, pss, threads = memory_kib(runtime.pid)
        results["runtimeRSSKiBWithThreeModules"] = rss
        results["runtimePSSKiBWithThreeModules"] = pss
        results["runtimeThreadsWithThreeModules"] = threads
        if os.path.exists("/usr/bin/time"):
            results["helpPeakRSSKiB"] = peak_rss_kib([args.runtime, "--help"])
            results["statusPeakRSSKiB"] = peak_rss_kib([args.runtime, "status", "--config", config])
        print(json.dumps(results, indent=2))
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
