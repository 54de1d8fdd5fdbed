#!/usr/bin/env python3
"""Broker-restart benchmark: how soon `fleethub serve` and the fleet are back after the
broker returns (issue 16: the hub reconnects within 2 s and shows every device online
within 5 s of the broker's return).

Starts a real mosquitto, `fleethub serve` and N simulated devices reporting every 30 s,
waits until every device is online at the hub, stops the broker for --outage seconds,
starts it again on the same port, and measures from that moment:
- until `serve` logs "ingesting device health again";
- until `fleethub devices --json` shows every device online again (the periodic
  reports are 30 s apart, so only what devices publish as they reconnect counts).

Usage: reconnect.py [--devices 100] [--outage 3] [--runs 3] [--bin .build-release/release]
Prints a JSON summary; writes nothing into the repository. Loopback only; every
process it starts is stopped at the end.
"""
import argparse, json, os, resource, sys, time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, here)
from fleetbench import FleetRun  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--outage", type=float, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bin", default=os.path.join(root, ".build-release", "release"))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with FleetRun(args.bin, "fleet-reconnect-bench-") as run:
        def wait(condition, timeout, what):
            return run.wait(condition, timeout, what, every=0.05)

        def all_online():
            devices = json.loads(run.hub("devices", "--json"))
            return len(devices) == args.devices and all(d.get("connectivity") == "online" for d in devices)

        run.start_hub(args.devices)
        broker = run.processes[0]
        broker_command = broker.args
        run.start_serve()
        run.start([run.simulator, "--broker", f"mqtt://127.0.0.1:{run.mqtt_port}", "--devices", str(args.devices),
                   "--interval", "30", "--duration", "3600"], "simulator.log")
        wait(all_online, 120, "every device online before the first outage")
        serve_log = os.path.join(run.work, "serve.log")

        reconnects, onlines = [], []
        for attempt in range(args.runs):
            seen = open(serve_log).read().count("ingesting device health again")
            broker.terminate()
            broker.wait(timeout=20)
            time.sleep(args.outage)
            broker = run.start(broker_command, f"mosquitto-{attempt + 1}.log")
            back = time.time()
            reconnected = wait(lambda: open(serve_log).read().count("ingesting device health again") > seen, 60,
                               "serve to reconnect")
            online = wait(all_online, 60, "every device online again")
            reconnects.append(round(reconnected - back, 2))
            onlines.append(round(online - back, 2))

        summary = {
            "devices": args.devices, "outageSeconds": args.outage, "runs": args.runs,
            "serveReconnectedSecondsAfterBrokerReturn": reconnects,
            "everyDeviceOnlineSecondsAfterBrokerReturn": onlines,
            "worstReconnectSeconds": max(reconnects), "worstEveryDeviceOnlineSeconds": max(onlines),
        }
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
