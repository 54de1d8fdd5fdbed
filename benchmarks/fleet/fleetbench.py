"""What the fleet benchmarks share: a run folder on this machine with a mosquitto on a
free loopback port, a hub workspace driven through the real `fleethub` CLI, N
registered devices, and every process started stopped at the end."""
import glob, os, pwd, socket, sqlite3, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FleetRun:
    """Use as `with FleetRun(bin, prefix) as run:`; the processes it started are
    stopped when the block ends, and the folder with their logs is printed."""

    def __init__(self, bin_folder, prefix, database="sqlite"):
        self.database = database
        self.postgres = None
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
        database = []
        if self.database == "postgres":
            self.postgres = PostgresCluster(self)
            database = ["--database", self.postgres.url]
        time.sleep(0.5)
        self.hub("init", "--insecure", "--broker", f"mqtt://127.0.0.1:{self.mqtt_port}",
                 "--public-url", f"http://127.0.0.1:{self.http_port}", "--insecure-http", *database)
        src = os.path.join(self.work, "src")
        os.makedirs(src)
        open(os.path.join(src, "run.sh"), "w").write("#!/bin/sh\nexec sleep 3600\n")
        self.hub("module", "package", "--name", "scorer", "--kind", "process", "--command", "sh run.sh", "--source", src)
        now = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime())
        if self.postgres:
            self.postgres.psql(
                f"INSERT INTO device (id, createdAt) SELECT 'sim-' || lpad(g::text, 5, '0'), '{now}' FROM generate_series(0, {devices - 1}) g;"
                f"INSERT INTO deviceTag (deviceId, key, value) SELECT id, 'fleet', 'bench' FROM device WHERE id LIKE 'sim-%'")
            return
        db = sqlite3.connect(os.path.join(self.workspace, "hub.sqlite"))
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


class PostgresCluster:
    """A throwaway PostgreSQL cluster (Debian's `postgresql`, defaults but for the port
    and socket) in the run folder, with an ordinary role `fleethub` owning database
    `hub`. PostgreSQL refuses to run as root: as root, it runs as the `postgres` user."""

    def __init__(self, run):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda b: int(b.split("/")[-2]))[-1]
        folder = os.path.join(run.work, "postgres")
        self.data, self.socket = os.path.join(folder, "data"), os.path.join(folder, "socket")
        os.makedirs(self.data)
        os.makedirs(self.socket)
        prefix = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chmod(run.work, 0o755)
            for path in (folder, self.data, self.socket):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        subprocess.run(prefix + [f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        self.port = free_port()
        run.start(prefix + [f"{self.bin}/postgres", "-D", self.data, "-p", str(self.port), "-k", self.socket,
                            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"], "postgres.log")
        run.wait(lambda: subprocess.run(self.command("SELECT 1", "postgres"), capture_output=True).returncode == 0,
                 30, "PostgreSQL to accept connections", every=0.2)
        self.psql("CREATE ROLE fleethub LOGIN PASSWORD 'bench'", "postgres")
        self.psql("CREATE DATABASE hub OWNER fleethub", "postgres")
        self.url = f"postgres://fleethub:bench@127.0.0.1:{self.port}/hub?sslmode=disable"

    def command(self, sql, database):
        return [f"{self.bin}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.socket, "-p", str(self.port),
                "-U", "postgres", "-d", database, "-c", sql]

    def psql(self, sql, database="hub"):
        subprocess.run(self.command(sql, database), check=True, capture_output=True)
