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
import argparse, json, os, resource, sys, time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, here)
from fleetbench import FleetRun  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--bin", default=os.path.join(root, ".build", "release"))
    args = parser.parse_args()
    n = args.devices
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with FleetRun(args.bin, "fleet-rollout-bench-") as run:
        hub, start, work, wait = run.hub, run.start, run.work, run.wait

        run.start_hub(n)
        run.deploy("1")
        run.start_serve()
        serve_started = time.time()

        per_process = 250
        sims, summaries, logs = [], [], []
        stop_file = os.path.join(work, "stop")
        for first in range(0, n, per_process):
            count = min(per_process, n - first)
            summaries.append(os.path.join(work, f"summary-{first}.json"))
            logs.append(f"simulator-{first}.log")
            sims.append(start([run.simulator, "--broker", f"mqtt://127.0.0.1:{run.mqtt_port}", "--devices", str(count),
                               "--first-index", str(first), "--interval", "10", "--duration", "900",
                               "--summary", summaries[-1], "--stop-file", stop_file, "--per-device"], logs[-1]))

        def all_on(revision_status):
            devices = json.loads(hub("devices", "--json"))
            return all(d.get("reportedRevision") == d.get("desiredRevision") and d.get("revisionStatus") == revision_status
                       for d in devices) and len(devices) == n
        wait(lambda: all_on("applied"), 180, "every device to report version 1")
        # `fleethub serve` evaluates rollouts only from 5 s after it connected to the
        # broker (reports stored before may be stale); measure after that.
        time.sleep(max(0, serve_started + 6 - time.time()))

        started = time.time()
        run.deploy("2", "rollout:\n  waves: [1, 10%, 50%, 100%]\n  soakSeconds: 0\n")
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


if __name__ == "__main__":
    main()
