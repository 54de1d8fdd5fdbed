#!/usr/bin/env python3
"""Fleet benchmark: N simulated devices against a real mosquitto and `fleethub serve`.

Measures the hub's report ingest rate, CPU and RSS, the time until `fleethub devices`
shows a change a device reported, and the fan-out time of a deployment to every
device (from `fleethub deploy` until each simulated device received the new desired
state). Usage: bench.py --devices 1000 [--interval 10] [--bin .build/release]
Prints a JSON summary and writes it as results-N.json into the run's folder (or
--out FILE), never over the committed results beside this file. Loopback only;
every process it starts is stopped at the end.
"""
import argparse, json, os, resource, sys, time, urllib.request

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, here)
from fleetbench import FleetRun  # noqa: E402


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(url, token, name):
    request = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    for line in urllib.request.urlopen(request, timeout=30).read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--window", type=float, default=30, help="seconds over which CPU and ingest rate are measured")
    parser.add_argument("--bin", default=os.path.join(root, ".build", "release"))
    parser.add_argument("--out", help="where to write the JSON summary (default: the run's folder)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                        help="the hub's database: its SQLite file, or a PostgreSQL cluster the benchmark starts")
    args = parser.parse_args()
    n = args.devices
    simulator_bin = os.path.join(args.bin, "fleet-simulator")
    # Each simulated device holds a socket and libmosquitto's wake-up socket pair, and
    # the broker a socket per device: raise the open-file limit (root may raise the hard one).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with FleetRun(args.bin, "fleet-bench-", database=args.database) as run:
        run.start_hub(n)
        hub, start, work, deploy = run.hub, run.start, run.work, run.deploy
        mqtt_port, http_port = run.mqtt_port, run.http_port
        token = next(line.split(": ", 1)[1] for line in hub("access", "show").splitlines() if line.startswith("viewer token"))
        deploy("1")
        serve = run.start_serve()
        url = f"http://127.0.0.1:{http_port}"
        for _ in range(100):
            try:
                metric(url, token, "fleethub_devices_online")
                break
            except Exception:
                time.sleep(0.2)

        change_after = 15 + args.window / 2
        duration = 15 + args.window + 300
        stop_file = os.path.join(work, "stop")
        t_connect = time.time()
        # libmosquitto's network thread waits with select(), which cannot watch a file
        # descriptor above 1023, and each client holds three (its socket and a wake-up
        # pair): one process can simulate about 330 devices, so the fleet is split over
        # processes of 300.
        per_process = 300
        sims, logs, summaries = [], [], []
        for first in range(0, n, per_process):
            count = min(per_process, n - first)
            summaries.append(os.path.join(work, f"summary-{first}.json"))
            logs.append(os.path.join(work, f"simulator-{first}.log"))
            extra = ["--change-after", str(change_after)] if first == 0 else []
            sims.append(start([simulator_bin, "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--devices", str(count),
                               "--first-index", str(first), "--interval", str(args.interval), "--duration", str(duration),
                               "--summary", summaries[-1], "--stop-file", stop_file, *extra],
                              os.path.basename(logs[-1])))
        log = logs[0]
        for sim, sim_log in zip(sims, logs):
            while "connected" not in open(sim_log).read():
                if sim.poll() is not None:
                    raise SystemExit("simulator exited:\n" + open(sim_log).read())
                time.sleep(0.2)
        connected_at = time.time()
        print(f"{n} devices connected in {connected_at - t_connect:.1f} s", flush=True)

        time.sleep(15)  # every device reported at least once
        cpu0, reports0, t0 = cpu_seconds(serve.pid), metric(url, token, "fleethub_reports_ingested_total"), time.time()
        change_seen = None
        while time.time() - t0 < args.window:
            text = open(log).read()
            if change_seen is None and "change-published" in text:
                published = float(text.split("change-published ")[1].split()[0])
                while True:
                    devices = json.loads(hub("devices", "--json"))
                    if devices[0]["restarts"] == 99:
                        change_seen = time.time() - published
                        break
                    time.sleep(0.1)
            time.sleep(0.5)
        cpu1, reports1, t1 = cpu_seconds(serve.pid), metric(url, token, "fleethub_reports_ingested_total"), time.time()
        started = time.time()
        hub("devices", "--json")
        devices_command = time.time() - started
        rss = rss_mib(serve.pid)

        deploy_started, deploy_returned = deploy("2")
        time.sleep(10)  # deliveries still in flight when `deploy` returned
        open(stop_file, "w").close()
        for sim in sims:
            sim.wait(timeout=300)
        parts = [json.load(open(path)) for path in summaries]
        result = {"connectSeconds": max(p["connectSeconds"] for p in parts),
                  "reportFailures": sum(p["reportFailures"] for p in parts), "revisions": {}}
        for part in parts:
            for revision, entry in part["revisions"].items():
                merged = result["revisions"].setdefault(revision, {"devices": 0, "firstArrival": entry["firstArrival"], "lastArrival": 0})
                merged["devices"] += entry["devices"]
                merged["firstArrival"] = min(merged["firstArrival"], entry["firstArrival"])
                merged["lastArrival"] = max(merged["lastArrival"], entry["lastArrival"])
        revision = max(int(r) for r in result["revisions"])
        fanout = result["revisions"][str(revision)]
        out = {
            "devices": n,
            "database": args.database,
            "reportIntervalSeconds": args.interval,
            "connectSeconds": round(result["connectSeconds"], 1),
            "ingestedReportsPerSecond": round((reports1 - reports0) / (t1 - t0), 1),
            "offeredReportsPerSecond": round(n / args.interval, 1),
            "hubCpuCores": round((cpu1 - cpu0) / (t1 - t0), 3),
            "hubRssMiB": round(rss, 1),
            "changeVisibleInFleethubDevicesSeconds": None if change_seen is None else round(change_seen, 2),
            "fleethubDevicesCommandSeconds": round(devices_command, 2),
            "deployCommandSeconds": round(deploy_returned - deploy_started, 2),
            "fanOutRevision": revision,
            "fanOutDevicesReached": fanout["devices"],
            "fanOutSeconds": round(fanout["lastArrival"] - deploy_started, 2),
            "simulatorReportFailures": result["reportFailures"],
        }
        print(json.dumps(out, indent=2))
        json.dump(out, open(args.out or os.path.join(work, f"results-{n}.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
