"""What the fleet benchmarks share: a run folder on this machine with a mosquitto on a
free loopback port, a hub workspace driven through the real `fleethub` CLI, N
registered devices, and every process started stopped at the end."""
import os, socket, sqlite3, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FleetRun:
    """Use as `with FleetRun(bin, prefix) as run:`; the processes it started are
    stopped when the block ends, and the folder with their logs is printed."""

    def __init__(self, bin_folder, prefix):
        self.fleethub = os.path.join(bin_folder, "fleethub")
        self.simulator = os.path.join(bin_folder, "fleet-simulator")
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.workspace = os.path.join(self.work, "hub")
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.processes = []

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for p in reversed(self.processes):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        print(f"logs in {self.work}", file=sys.stderr)

    def start(self, cmd, log):
        p = subprocess.Popen(cmd, stdout=open(os.path.join(self.work, log), "w"), stderr=subprocess.STDOUT)
        self.processes.append(p)
        return p

    def wait(self, condition, timeout, what, every=0.5):
        """Polls `condition` every `every` seconds until it holds; returns when it did,
        or exits naming `what` after `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return time.time()
            time.sleep(every)
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: timed out waiting for {what}; logs in {self.work}")

    def hub(self, *arguments):
        return subprocess.run([self.fleethub, *arguments, "--workspace", self.workspace],
                              check=True, capture_output=True, text=True).stdout

    def start_hub(self, devices):
        """Starts mosquitto, creates the workspace (plain MQTT, `--insecure`), packages a
        `process` module `scorer:1` and registers `devices` devices tagged fleet=bench,
        in one transaction (`device add` hashes a broker password and restages the
        fleet per device)."""
        conf = os.path.join(self.work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(open(os.path.join(here, "mosquitto.conf")).read() + f"listener {self.mqtt_port} 127.0.0.1\n")
        self.start(["mosquitto", "-c", conf], "mosquitto.log")
        time.sleep(0.5)
        self.hub("init", "--insecure", "--broker", f"mqtt://127.0.0.1:{self.mqtt_port}",
                 "--public-url", f"http://127.0.0.1:{self.http_port}", "--insecure-http")
        src = os.path.join(self.work, "src")
        os.makedirs(src)
        open(os.path.join(src, "run.sh"), "w").write("#!/bin/sh\nexec sleep 3600\n")
        self.hub("module", "package", "--name", "scorer", "--kind", "process", "--command", "sh run.sh", "--source", src)
        db = sqlite3.connect(os.path.join(self.workspace, "hub.sqlite"))
        now = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime())
        ids = [f"sim-{i:05d}" for i in range(devices)]
        db.executemany("INSERT INTO device (id, createdAt) VALUES (?, ?)", [(i, now) for i in ids])
        db.executemany("INSERT INTO deviceTag (deviceId, key, value) VALUES (?, 'fleet', 'bench')", [(i,) for i in ids])
        db.commit()
        db.close()

    def deploy(self, level, rollout=""):
        """Deploys `scorer:1` to the fleet with env LEVEL (a change each time); returns
        when the command started and when it returned."""
        manifest = os.path.join(self.work, "bench.yaml")
        open(manifest, "w").write(
            f"name: bench\npriority: 1\ntarget: fleet=bench\nmodules:\n  - name: scorer\n    bundle: scorer:1\n"
            f"    env: {{LEVEL: '{level}'}}\n{rollout}")
        started = time.time()
        self.hub("deploy", manifest)
        return started, time.time()

    def start_serve(self):
        return self.start([self.fleethub, "serve", "--http", f"127.0.0.1:{self.http_port}", "--workspace", self.workspace],
                          "serve.log")
