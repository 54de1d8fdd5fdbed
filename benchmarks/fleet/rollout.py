#!/usr/bin/env python3
"""Rollout benchmark: a staged rollout over N simulated devices, advanced by a real
`fleethub serve` on a real mosquitto.

Deploys version 1 of a deployment to every device at once, waits until every device
reported it, then deploys version 2 with `waves: [1, 10%, 50%, 100%]` and
`soakSeconds: 0`, and waits until the rollout completed. From the simulators'
per-device timings it measures, for each wave boundary, the time from the last
report the wave needed (the last device of the wave reporting the new revision) to
the next wave's publish (the first device of the next wave receiving it), and how
long each wave's fan-out took. The goal (issue 11) is at most 2 s per boundary.

Usage: rollout.py [--devices 1000] [--bin .build/release]
Prints a JSON summary and writes it to the run's temporary folder (never over a
committed file). Loopback only; every process it starts is stopped at the end.
"""
import argparse, json, os, resource, sqlite3, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, here)
from bench import free_port  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--bin", default=os.path.join(root, ".build", "release"))
    args = parser.parse_args()
    n = args.devices
    fleethub = os.path.join(args.bin, "fleethub")
    simulator_bin = os.path.join(args.bin, "fleet-simulator")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix="fleet-rollout-bench-")
    mqtt_port, http_port = free_port(), free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(open(os.path.join(here, "mosquitto.conf")).read() + f"listener {mqtt_port} 127.0.0.1\n")
    processes = []

    def start(cmd, log):
        p = subprocess.Popen(cmd, stdout=open(os.path.join(work, log), "w"), stderr=subprocess.STDOUT)
        processes.append(p)
        return p

    ws = os.path.join(work, "hub")

    def hub(*a):
        return subprocess.run([fleethub, *a, "--workspace", ws], check=True, capture_output=True, text=True).stdout

    manifest = os.path.join(work, "bench.yaml")

    def deploy(level, rollout=""):
        open(manifest, "w").write(
            f"name: bench\npriority: 1\ntarget: fleet=bench\nmodules:\n  - name: scorer\n    bundle: scorer:1\n"
            f"    env: {{LEVEL: '{level}'}}\n{rollout}")
        hub("deploy", manifest)

    def wait(condition, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.5)
        raise SystemExit(f"rollout.py: timed out waiting for {what}; logs in {work}")

    try:
        start(["mosquitto", "-c", conf], "mosquitto.log")
        time.sleep(0.5)
        hub("init", "--insecure", "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--public-url", f"http://127.0.0.1:{http_port}")
        src = os.path.join(work, "src")
        os.makedirs(src)
        open(os.path.join(src, "run.sh"), "w").write("#!/bin/sh\nexec sleep 3600\n")
        hub("module", "package", "--name", "scorer", "--kind", "process", "--command", "sh run.sh", "--source", src)
        # As bench.py does: register the fleet in one transaction.
        db = sqlite3.connect(os.path.join(ws, "hub.sqlite"))
        now = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime())
        ids = [f"sim-{i:05d}" for i in range(n)]
        db.executemany("INSERT INTO device (id, createdAt) VALUES (?, ?)", [(i, now) for i in ids])
        db.executemany("INSERT INTO deviceTag (deviceId, key, value) VALUES (?, 'fleet', 'bench')", [(i,) for i in ids])
        db.commit()
        db.close()
        deploy("1")
        start([fleethub, "serve", "--http", f"127.0.0.1:{http_port}", "--workspace", ws], "serve.log")

        per_process = 250
        sims, summaries, logs = [], [], []
        stop_file = os.path.join(work, "stop")
        for first in range(0, n, per_process):
            count = min(per_process, n - first)
            summaries.append(os.path.join(work, f"summary-{first}.json"))
            logs.append(f"simulator-{first}.log")
            sims.append(start([simulator_bin, "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--devices", str(count),
                               "--first-index", str(first), "--interval", "10", "--duration", "900",
                               "--summary", summaries[-1], "--stop-file", stop_file, "--per-device"], logs[-1]))

        def all_on(revision_status):
            devices = json.loads(hub("devices", "--json"))
            return all(d.get("reportedRevision") == d.get("desiredRevision") and d.get("revisionStatus") == revision_status
                       for d in devices) and len(devices) == n
        wait(lambda: all_on("applied"), 180, "every device to report version 1")

        started = time.time()
        deploy("2", "rollout:\n  waves: [1, 10%, 50%, 100%]\n  soakSeconds: 0\n")
        wait(lambda: json.loads(hub("rollout", "status", "bench", "--json"))["state"] == "completed", 300, "the rollout to complete")
        completed = time.time()
        status = json.loads(hub("rollout", "status", "bench", "--json"))
        open(stop_file, "w").close()
        for sim in sims:
            sim.wait(timeout=120)
        timings = {}
        for path in summaries:
            timings.update(json.load(open(path))["perDevice"])

        waves = {}
        for entry in status["perDevice"]:
            device = timings[entry["deviceId"]]
            revision = max(device, key=int)
            waves.setdefault(entry["wave"], []).append(device[revision])
        boundaries = []
        for wave in sorted(waves)[:-1]:
            last_report = max(t["reported"] for t in waves[wave])
            next_publish = min(t["arrived"] for t in waves[wave + 1])
            boundaries.append({
                "fromWave": wave, "devicesInWave": len(waves[wave]), "nextWaveDevices": len(waves[wave + 1]),
                "lastReportToNextPublishSeconds": round(next_publish - last_report, 3),
                "nextWaveFanOutSeconds": round(max(t["arrived"] for t in waves[wave + 1]) - next_publish, 3),
            })
        out = {
            "devices": n, "waves": status["waves"], "state": status["state"],
            "rolloutSeconds": round(completed - started, 1), "boundaries": boundaries,
            "worstLastReportToNextPublishSeconds": max(b["lastReportToNextPublishSeconds"] for b in boundaries),
        }
        print(json.dumps(out, indent=2))
        json.dump(out, open(os.path.join(work, f"rollout-{n}.json"), "w"), indent=2)
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        print(f"logs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
