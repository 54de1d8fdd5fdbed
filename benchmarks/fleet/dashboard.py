#!/usr/bin/env python3
"""The dashboard's overview at fleet scale: N simulated devices (one crash-looping)
report to `fleethub serve`; then the script fetches the overview as a browser does and
measures its size and the hub's time to answer: the full page, a live refresh that
only asks for the parts that changed, a 304 when nothing did, and a search.

    python3 benchmarks/fleet/dashboard.py --devices 10000 --bin .build-release/release

Prints one JSON object (also written to --out)."""
import argparse, json, os, resource, statistics, sys, time, urllib.request, urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetbench import FleetRun  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fetch(url, token, headers=None):
    """(status, body bytes, headers, seconds from request to the last byte)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            return response.status, body, response.headers, time.perf_counter() - started
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, body, error.headers, time.perf_counter() - started


def timed(url, token, runs, headers=None):
    """The median and worst seconds of `runs` requests, and the last answer."""
    times, last = [], None
    for _ in range(runs):
        last = fetch(url, token, headers)
        times.append(last[3])
    return statistics.median(times), max(times), last


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10, help="seconds between a device's reports")
    parser.add_argument("--runs", type=int, default=20, help="requests per measurement")
    parser.add_argument("--bin", default=os.path.join(root, ".build", "release"))
    parser.add_argument("--out", help="where to write the JSON summary")
    args = parser.parse_args()
    n = args.devices
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with FleetRun(args.bin, "dashboard-bench-") as run:
        run.start_hub(n)
        token = next(line.split(": ", 1)[1] for line in run.hub("access", "show").splitlines() if line.startswith("viewer token"))
        run.deploy("1")
        run.start_serve()
        base = f"http://127.0.0.1:{run.http_port}"
        for _ in range(100):
            try:
                fetch(f"{base}/metrics", token)
                break
            except Exception:
                time.sleep(0.2)
        stop_file = os.path.join(run.work, "stop")
        sims = []
        for first in range(0, n, 300):  # at most 300 devices per simulator process (see results.md)
            extra = ["--change-after", "1"] if first == 0 else []
            sims.append(run.start([run.simulator, "--broker", f"mqtt://127.0.0.1:{run.mqtt_port}", "--devices", str(min(300, n - first)),
                                   "--first-index", str(first), "--interval", str(args.interval), "--duration", "3600",
                                   "--stop-file", stop_file, *extra], f"simulator-{first}.log"))
        deadline = time.time() + 300
        while True:
            text = fetch(f"{base}/metrics", token)[1].decode()
            online = int(next(line.split()[-1] for line in text.splitlines() if line.startswith("fleethub_devices_online ")))
            if online == n:
                break
            if time.time() > deadline:
                raise SystemExit(f"only {online} of {n} devices online after 300 s")
            time.sleep(1)
        time.sleep(args.interval + 2)  # every device reported, and sim-00000 crash-loops

        overview = f"{base}/"
        status, page, headers, _ = fetch(overview, token)
        assert status == 200, status
        fetch(f"{overview}?live=1", token)  # the hub decodes every report once
        full_median, full_worst, _ = timed(overview, token, args.runs)
        status, live, live_headers, _ = fetch(f"{overview}?live=1", token)
        parts = json.loads(live)["parts"]
        have = ", ".join(f"{part}={value['etag']}" for part, value in parts.items())
        delta_median, delta_worst, (_, delta, _, _) = timed(f"{overview}?live=1", token, args.runs, {"X-Dashboard-Parts": have})
        search_median, _, (_, search, _, _) = timed(f"{overview}?q=sim-0999&tag=fleet%3Dbench", token, args.runs)

        # Quiet fleet: the simulators stop, nothing changes until the heartbeat runs out.
        open(stop_file, "w").close()
        for sim in sims:
            sim.wait(timeout=120)
        time.sleep(1.5)  # the hub's last write batch
        etag = fetch(f"{overview}?live=1", token)[2]["ETag"]
        not_modified_median, not_modified_worst, (not_modified_status, _, _, _) = timed(
            f"{overview}?live=1", token, args.runs, {"If-None-Match": etag, "X-Dashboard-Parts": have})

        out = {
            "devices": n,
            "reportIntervalSeconds": args.interval,
            "overviewBytes": len(page),
            "overviewMedianMs": round(full_median * 1000, 1),
            "overviewWorstMs": round(full_worst * 1000, 1),
            "liveDeltaBytes": len(delta),
            "liveDeltaParts": sorted(json.loads(delta)["parts"].keys()),
            "liveDeltaMedianMs": round(delta_median * 1000, 1),
            "liveDeltaWorstMs": round(delta_worst * 1000, 1),
            "searchBytes": len(search),
            "searchMedianMs": round(search_median * 1000, 1),
            "quietStatus": not_modified_status,
            "quietMedianMs": round(not_modified_median * 1000, 1),
            "quietWorstMs": round(not_modified_worst * 1000, 1),
        }
        print(json.dumps(out, indent=2))
        if args.out:
            json.dump(out, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
