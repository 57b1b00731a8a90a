#!/usr/bin/env python3
"""Ban storms, side by side: ferroban (native `ferroban-nftables`) and fail2ban-server 1.0.2 (its
`nftables` shell action), one after the other, each daemon in a network namespace of its own that
is deleted afterwards. Not a test: it prints Markdown tables and writes bench/out/storm/*.csv.

    sudo bench/storm.sh                      # (the wrapper builds the release binary first)

Runs, per daemon (a fresh scratch configuration, database and namespace for each run):
  one      STORM_N addresses (default 100,000) in ONE `set bench banip ...` request through the
           client; the clock runs from the client's start until all are in the kernel's set
  chunks   the same in requests of STORM_CHUNK addresses (default 5,000), one after the other
  flat     10 requests of 10,000: each request's time (client start to its answer), for the
           per-ban cost of the tenth against the first
  log      STORM_LOG addresses (default 20,000) x maxretry (3) failure lines appended to the jail's
           log at once; clock until all are in the kernel
  restore  after `one`: kill -9, `nft flush ruleset`, restart; clock from the restart until all
           STORM_N are back in the kernel
Every clock is bounded by STORM_LIMIT seconds (default 60); a daemon that does not finish within
it is reported with how many of the addresses were in the kernel when it stopped.
The kernel is polled cheaply first (is the run's last address blocked on port 80? see Probe), then
all its set elements are counted with `nft -j list ruleset` (every 0.2 s until all are there).
Environment: FERROBAN_BIN (default target/release/ferroban), FERROBAN_F2B_ROOT (/tmp/f2b/root),
STORM_DAEMONS ("ferroban fail2ban"), STORM_RUNS ("one chunks flat log").
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERROBAN = os.environ.get("FERROBAN_BIN", os.path.join(REPO, "target/release/ferroban"))
F2B = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
N = int(os.environ.get("STORM_N", "100000"))
CHUNK = int(os.environ.get("STORM_CHUNK", "5000"))
NLOG = int(os.environ.get("STORM_LOG", "20000"))
LIMIT = float(os.environ.get("STORM_LIMIT", "60"))
DAEMONS = os.environ.get("STORM_DAEMONS", "ferroban fail2ban").split()
OUT = os.path.join(REPO, "bench/out/storm")
FILTER = '[Definition]\nfailregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)\nignoreregex =\n'


def addrs(n, base=0x0A000000):
    return [f"{(a >> 24) & 255}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
            for a in range(base, base + n)]


class Daemon:
    def __init__(self, name, ns, work):
        self.name, self.ns, self.work = name, ns, work
        self.cfg = os.path.join(work, "etc")
        self.log = os.path.join(work, "access.log")
        self.sock = os.path.join(work, "s.sock")
        self.dlog = os.path.join(work, "daemon.log")
        open(self.log, "w").close()
        if name == "fail2ban":
            shutil.copytree(os.path.join(F2B, "etc/fail2ban"), self.cfg)
            banaction = "nftables"
            self.server = ["python3", os.path.join(F2B, "usr/bin/fail2ban-server")]
            self.client = ["python3", os.path.join(F2B, "usr/bin/fail2ban-client"), "-c", self.cfg]
            self.env = dict(os.environ, PYTHONPATH=os.path.join(F2B, "usr/lib/python3/dist-packages"))
        else:
            os.makedirs(self.cfg)
            banaction = "ferroban-nftables"
            self.server = [FERROBAN, "server"]
            self.client = [FERROBAN, "client"]
            self.env = dict(os.environ)
        os.makedirs(os.path.join(self.cfg, "filter.d"), exist_ok=True)
        with open(os.path.join(self.cfg, "filter.d/bench-404.conf"), "w") as f:
            f.write(FILTER)
        with open(os.path.join(self.cfg, "fail2ban.local"), "w") as f:
            f.write(f"[Definition]\ndbfile = {work}/db.sqlite3\n")
        with open(os.path.join(self.cfg, "jail.local"), "w") as f:
            f.write(
                f"[DEFAULT]\nbanaction = {banaction}\nignoreself = false\n[sshd]\nenabled = false\n"
                f"[bench]\nenabled = true\nfilter = bench-404\nport = http\nlogpath = {self.log}\n"
                "maxretry = 3\nbantime = 1d\nfindtime = 1h\n"
            )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns] + self.server
            + ["-f", "-x", "-c", self.cfg, "-s", self.sock, "-p", os.path.join(self.work, "p.pid"),
               "--logtarget", self.dlog],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(self.sock) and os.path.exists(self.dlog) \
                    and "Jail 'bench' started" in open(self.dlog, errors="replace").read():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start within 60 s")

    def kill9(self):
        # The server runs under `ip netns exec` (which execs): the Popen pid is the server.
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, argv, stdin=None, timeout=None):
        return subprocess.run(["ip", "netns", "exec", self.ns] + self.client + ["-s", self.sock] + argv,
                              env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout)


def in_kernel(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return 0
    n = 0
    for item in json.loads(r.stdout).get("nftables", []):
        s = item.get("set")
        if s:
            n += len(s.get("elem", []))
    return n


# Listing 100,000 set elements (`nft -j list ruleset` and parsing it) takes 1.5-2 s on the bench
# machine, longer than what is measured. So a run first polls a cheap probe: a process in the
# namespace holding a listener on port 80 (the jail's port), which connects to it from the LAST
# address the run bans (added to the namespace's loopback): refused means the kernel's set holds
# that address. Then one full count (untimed) checks that ALL the addresses are there; if not,
# the clock goes on with full counts as before.
PROBE = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 80)); srv.listen(64)
for line in sys.stdin:
    src = line.strip(); c = socket.socket(); c.settimeout(0.5)
    try:
        c.bind((src, 0)); c.connect(("127.0.0.1", 80)); verdict = "open"
        srv.accept()[0].close()
    except OSError:
        verdict = "blocked"
    c.close(); print(verdict, flush=True)
"""


class Probe:
    """Asks, in namespace `ns`, whether packets from `addr` to port 80 are blocked."""

    def __init__(self, ns, addr):
        self.addr = addr
        subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True)
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", PROBE],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def blocked(self):
        self.proc.stdin.write(self.addr + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip() == "blocked"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(5)


def wait_kernel(ns, want, t0, limit=LIMIT, probe=None):
    """Seconds from t0 until `want` elements are in the kernel, or (None, count) at the limit."""
    if probe is not None:
        while not probe.blocked():
            if time.monotonic() - t0 > limit:
                return None, in_kernel(ns)
            time.sleep(0.005)
        secs = time.monotonic() - t0
        n = in_kernel(ns)
        if n >= want:
            return secs, n
    while True:
        n = in_kernel(ns)
        if n >= want:
            return time.monotonic() - t0, n
        if time.monotonic() - t0 > limit:
            return None, n
        time.sleep(0.2)


def fmt(secs, n, want):
    return f"{secs:.2f}" if secs is not None else f"stopped at {LIMIT:.0f} s: {n:,} of {want:,} in the kernel"


def line(ip, t):
    return f'{ip} - - [{t}] "GET /missing HTTP/1.1" 404 153 "-" "bench"\n'


def run(name, scenario):
    ns = f"fb-storm-{os.getpid()}-{name[:2]}-{scenario}"
    work = tempfile.mkdtemp(prefix=f"ferroban-storm-{name}-")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    d = Daemon(name, ns, work)
    res = {}
    probe = None
    try:
        d.start()
        if scenario == "one":
            ips = addrs(N)
            probe = Probe(ns, ips[-1])
            t0 = time.monotonic()
            # fail2ban-client takes the addresses as arguments (ARG_MAX permitting); ferroban the same.
            p = subprocess.Popen(["ip", "netns", "exec", ns] + d.client + ["-s", d.sock, "set", "bench", "banip"] + ips,
                                 env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            secs, n = wait_kernel(ns, N, t0, probe=probe)
            res["one"] = fmt(secs, n, N)
            try:
                p.wait(5 if secs is None else 60)
            except subprocess.TimeoutExpired:
                p.kill()
            if secs is not None:
                # restore: kill -9, empty ruleset, restart
                d.kill9()
                subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"], check=True)
                open(d.dlog, "w").close()
                t0 = time.monotonic()
                d.start()
                secs, n = wait_kernel(ns, N, t0, probe=probe)
                res["restore"] = fmt(secs, n, N)
            else:
                res["restore"] = "not run (the bans did not all reach the kernel)"
        elif scenario == "chunks":
            ips = addrs(N)
            probe = Probe(ns, ips[-1])
            t0 = time.monotonic()
            for i in range(0, N, CHUNK):
                r = d.call(["set", "bench", "banip"] + ips[i:i + CHUNK], timeout=max(1, LIMIT - (time.monotonic() - t0)))
                if r.returncode != 0:
                    raise RuntimeError(f"chunk {i}: {r.stdout} {r.stderr}")
                if time.monotonic() - t0 > LIMIT:
                    break
            secs, n = wait_kernel(ns, N, t0, probe=probe)
            res["chunks"] = fmt(secs, n, N)
        elif scenario == "flat":
            ips = addrs(100000)
            times = []
            t0 = time.monotonic()
            for i in range(10):
                t = time.monotonic()
                r = d.call(["set", "bench", "banip"] + ips[i * 10000:(i + 1) * 10000],
                           timeout=max(1, LIMIT - (t - t0)))
                if r.returncode != 0:
                    raise RuntimeError(f"chunk {i}: {r.stdout} {r.stderr}")
                times.append(time.monotonic() - t)
                if time.monotonic() - t0 > LIMIT:
                    break
            res["flat"] = times
        elif scenario == "log":
            ips = addrs(NLOG, 0x0B000000)
            t = time.strftime("%d/%b/%Y:%H:%M:%S %z")
            text = "".join(line(ip, t) for _ in range(3) for ip in ips)
            probe = Probe(ns, ips[-1])
            t0 = time.monotonic()
            with open(d.log, "a") as f:
                f.write(text)
            secs, n = wait_kernel(ns, NLOG, t0, probe=probe)
            res["log"] = fmt(secs, n, NLOG)
    except subprocess.TimeoutExpired as e:
        res[scenario] = f"stopped at {LIMIT:.0f} s (client still waiting): {in_kernel(ns):,} in the kernel"
    except Exception as e:
        res[scenario] = f"NOT MEASURED: {e}"
    finally:
        if probe is not None:
            probe.close()
        d.stop()
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    os.makedirs(OUT, exist_ok=True)
    results = {}
    for name in DAEMONS:
        results[name] = {}
        for sc in os.environ.get("STORM_RUNS", "one chunks flat log").split():
            print(f"storm: {name} {sc} ...", file=sys.stderr, flush=True)
            r = run(name, sc)
            print(f"storm: {name} {sc}: {r}", file=sys.stderr, flush=True)
            results[name].update(r)
    with open(os.path.join(OUT, "flat.csv"), "w") as f:
        f.write("daemon,chunk,seconds\n")
        for name, r in results.items():
            for i, s in enumerate(r.get("flat", []) if isinstance(r.get("flat"), list) else []):
                f.write(f"{name},{i + 1},{s:.4f}\n")
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\nBan storms (seconds until all are in the kernel's nftables set; load {' '.join(load)}, {os.cpu_count()} cores)\n")
    print("| run | " + " | ".join(DAEMONS) + " |")
    print("|---|" + "---|" * len(DAEMONS))
    rows = [("one", f"{N:,} addresses, one `banip` request"),
            ("chunks", f"{N:,} addresses, `banip` requests of {CHUNK:,}"),
            ("log", f"{NLOG:,} log-driven bans ({NLOG:,} x 3 lines appended at once)"),
            ("restore", f"kill -9, `nft flush ruleset`, restart: {N:,} back")]
    for key, label in rows:
        print(f"| {label} | " + " | ".join(str(results[d].get(key, "-")) for d in DAEMONS) + " |")
    print("\nPer-ban cost: 10 `banip` requests of 10,000, each request's seconds (client start to answer)\n")
    print("| daemon | " + " | ".join(str(i) for i in range(1, 11)) + " | 10th / 1st |")
    print("|---|" + "---|" * 11)
    for name in DAEMONS:
        t = results[name].get("flat")
        if isinstance(t, list) and t:
            ratio = f"{t[-1] / t[0]:.2f}" if len(t) == 10 else f"stopped after {len(t)}"
            print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in t) + " |" * (11 - len(t)) + f" {ratio} |")
        else:
            print(f"| {name} | {t} |")


if __name__ == "__main__":
    main()
