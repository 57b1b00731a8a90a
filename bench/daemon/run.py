#!/usr/bin/env python3
"""One daemon under the benchmark: start it, measure it, stop it, print its figures as JSON.

    run.py --flavour fail2ban|ferroban --workdir DIR [--bin PATH] [--bans N] [--lines N] ...

Called by bench/daemon.sh once per daemon. It writes a fresh configuration into DIR (a copy of the
reference's etc/fail2ban plus the guide's jails, and an action that records each ban with a
high-resolution timestamp; no firewall), runs the server in the foreground as its own child
(stopped with `client stop`, killed by its PID only if that fails), and measures:

  * resident memory (VmRSS, VmHWM of /proc/PID/status) after start and after the load;
  * ban latency: one failure line appended at a time (maxretry = 1, a new address each), time from
    the append to the action's timestamp, for nginx-404 (access.log, read by five jails) and sshd;
  * sustained throughput: N lines appended as fast as possible, time until the daemon's log shows
    the Found of the last one: (a) ordinary 200 lines through the five access.log jails, (b)
    failure lines into one jail whose maxretry is never reached.

Every wait has a timeout; on any error the JSON says what failed and the daemon is stopped.
Log lines use documentation addresses (RFC 5737/3849) and are only written to files.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

JAILS_ACCESS = ["nginx-404", "nginx-botsearch", "nginx-bad-request", "nginx-badbots", "nginx-noscript"]
JAILS_ERROR = ["nginx-http-auth", "nginx-limit-req"]
ALL_JAILS = ["sshd"] + JAILS_ACCESS + JAILS_ERROR + ["nginx-load"]

# The guide's filters, written by its user.
FILTER_404 = """[Definition]
failregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)
ignoreregex =
"""
FILTER_NOSCRIPT = """[Definition]
failregex = ^<HOST> -.*GET.*(\\.php|\\.asp|\\.exe|\\.pl|\\.cgi|\\.scgi)
ignoreregex =
"""

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class BenchError(Exception):
    pass


def v4(block, i):
    """Address i (0..253) of a documentation block: 0 -> 192.0.2, 1 -> 198.51.100, 2 -> 203.0.113."""
    prefix = ["192.0.2", "198.51.100", "203.0.113"][block]
    return f"{prefix}.{i + 1}"


def nginx_time(t):
    return time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(t))


def access_line(ip, path, status, t):
    return f'{ip} - - [{nginx_time(t)}] "GET {path} HTTP/1.1" {status} 153 "-" "{AGENT}"\n'


def sshd_line(ip, t):
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(t))
    return f"{stamp} bench sshd[4242]: Failed password for root from {ip} port 50022 ssh2\n"


def append(path, text):
    """Appends with one write(2); returns the time just after it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
        return time.time()
    finally:
        os.close(fd)


class Tail:
    """Reads what a file gains, line by line."""

    def __init__(self, path):
        self.path = path
        self.pos = os.path.getsize(path) if os.path.exists(path) else 0
        self.rest = b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        data = self.rest + data
        *full, self.rest = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in full]


class Daemon:
    def __init__(self, args):
        self.args = args
        self.dir = os.path.abspath(args.workdir)
        self.cfg = os.path.join(self.dir, "etc-fail2ban")
        self.sock = os.path.join(self.dir, "server.sock")
        self.log = os.path.join(self.dir, "daemon.log")
        self.record = os.path.join(self.dir, "bans.record")
        self.proc = None
        if args.flavour == "fail2ban":
            root = args.f2b_root
            self.env = dict(os.environ, PYTHONPATH=os.path.join(root, "usr/lib/python3/dist-packages"))
            self.server_cmd = [args.python, os.path.join(root, "usr/bin/fail2ban-server")]
            self.client_cmd = [args.python, os.path.join(root, "usr/bin/fail2ban-client")]
        else:
            self.env = dict(os.environ)
            self.server_cmd = [args.bin, "server"]
            self.client_cmd = [args.bin, "client"]

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_config(self):
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        shutil.copytree(os.path.join(self.args.f2b_root, "etc/fail2ban"), self.cfg)
        for name in ["access.log", "error.log", "auth.log", "load.log", "bans.record"]:
            open(self.path(name), "w").close()
        d = self.dir
        with open(os.path.join(self.cfg, "fail2ban.local"), "w") as f:
            f.write(f"[Definition]\ndbfile = {d}/daemon.sqlite3\nlogtarget = {d}/daemon.log\n")
        with open(os.path.join(self.cfg, "filter.d/nginx-404.conf"), "w") as f:
            f.write(FILTER_404)
        with open(os.path.join(self.cfg, "filter.d/nginx-noscript.conf"), "w") as f:
            f.write(FILTER_NOSCRIPT)
        # The measuring action: the address and the time it ran, to the nanosecond.
        with open(os.path.join(self.cfg, "action.d/bench-record.conf"), "w") as f:
            f.write(
                "[Definition]\nactionstart =\nactionstop =\nactioncheck =\n"
                f'actionban = echo "<ip> $(date +%%s.%%N)" >> {self.record}\n'
                "actionunban =\n"
            )
        jails = [
            "[DEFAULT]",
            "banaction = bench-record",
            "banaction_allports = bench-record",
            "maxretry = 1",
            "findtime = 1h",
            "bantime = 1h",
            # The addresses are documentation ranges, and a lab machine may own one of them (this
            # one has 192.0.2.2 on eth0): ferroban's ignoreself covers every interface address,
            # fail2ban's only the host name's, so switch it off for both.
            "ignoreself = false",
            "",
            "[sshd]",
            "enabled = true",
            f"logpath = {d}/auth.log",
        ]
        for name in JAILS_ACCESS + JAILS_ERROR:
            log = "access.log" if name in JAILS_ACCESS else "error.log"
            jails += ["", f"[{name}]", "enabled = true", "port = http,https", f"logpath = {d}/{log}"]
            if name == "nginx-badbots":
                jails.append("filter = apache-badbots")
        jails += [
            "",
            "[nginx-load]",
            "enabled = true",
            "filter = nginx-404",
            "port = http,https",
            f"logpath = {d}/load.log",
            f"maxretry = {self.args.lines * 10}",
        ]
        with open(os.path.join(self.cfg, "jail.local"), "w") as f:
            f.write("\n".join(jails) + "\n")

    def client(self, *args, timeout=30):
        cmd = self.client_cmd + ["-c", self.cfg, "-s", self.sock] + list(args)
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self):
        cmd = self.server_cmd + [
            "-f", "-x", "-c", self.cfg, "-s", self.sock, "-p", self.path("server.pid"),
            "--logtarget", self.log, "--loglevel", "INFO",
        ]
        out = open(self.path("server.out"), "w")
        t0 = time.time()
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = t0 + 60
        while True:
            if self.proc.poll() is not None:
                with open(self.path("server.out")) as f:
                    said = f.read().strip()
                code, self.proc = self.proc.returncode, None
                raise BenchError(f"server exited with status {code} at start: {said or '(no output)'}")
            log = open(self.log, errors="replace").read() if os.path.exists(self.log) else ""
            if all(f"Jail '{j}' started" in log for j in ALL_JAILS):
                if self.client("status", timeout=10).returncode == 0:
                    return time.time() - t0
            if time.time() > deadline:
                raise BenchError("server not ready within 60 s (all jails started, `client status` answers)")
            time.sleep(0.05)

    def memory(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024.0  # kB -> MiB
        return fields

    def status_field(self, jail, field):
        out = self.client("status", jail)
        if out.returncode != 0:
            raise BenchError(f"`client status {jail}` failed: {out.stderr.strip() or out.stdout.strip()}")
        for line in out.stdout.splitlines():
            if field in line:
                return int(line.rsplit(":", 1)[1].strip())
        raise BenchError(f"`client status {jail}` has no {field!r} line:\n{out.stdout}")

    def stop(self):
        if self.proc is None:
            return "not running"
        try:
            self.client("stop", timeout=30)
            self.proc.wait(timeout=30)
            return f"stopped (exit {self.proc.returncode})"
        except Exception as e:  # noqa: BLE001 - any failure: kill our own child
            self.proc.kill()
            self.proc.wait()
            return f"killed after failed stop: {e}"
        finally:
            self.proc = None


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * q // 100) - 1))
    return sorted_values[int(k)]


def measure_latency(d, log_name, make_line, addresses, gap):
    """Appends one failure line per address, waiting for its ban each time. Returns stats in ms."""
    record = Tail(d.record)
    latencies, missing = [], []
    for ip in addresses:
        written = append(d.path(log_name), make_line(ip, time.time()))
        deadline = written + 10
        got = None
        while got is None and time.time() < deadline:
            for line in record.lines():
                who, _, stamp = line.partition(" ")
                if who == ip:
                    got = float(stamp)
            if got is None:
                time.sleep(0.0005)
        if got is None:
            missing.append(ip)
        else:
            latencies.append((got - written) * 1000.0)
        time.sleep(gap)
    latencies.sort()
    if not latencies:
        raise BenchError(f"no ban recorded for {log_name} (first address {addresses[0]})")
    return {
        "n": len(latencies),
        "missing": len(missing),
        "median_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1],
        # Every sample, sorted (bench/plots.py draws their distribution).
        "samples_ms": latencies,
    }


def measure_throughput(d, log_name, jail, lines, marker, timeout):
    """Appends `lines` (the last from `marker`) as fast as possible; time until `Found marker`."""
    log = Tail(d.log)
    needle = f"[{jail}] Found {marker} "
    start = time.time()
    with open(d.path(log_name), "a", buffering=1 << 16) as f:
        for chunk in lines:
            f.write(chunk)
    written = time.time() - start
    deadline = start + timeout
    while time.time() < deadline:
        if any(needle in line for line in log.lines()):
            took = time.time() - start
            return {"seconds": took, "write_seconds": written}
        time.sleep(0.005)
    raise BenchError(f"{jail}: no {needle.strip()!r} in the daemon's log within {timeout} s")


def load_lines_ok(n, marker):
    """n-1 ordinary 200 lines (no jail matches them), then one 404 from the marker."""
    out, t, stamp_at = [], time.time(), 0
    for i in range(n - 1):
        if i - stamp_at >= 1000:
            t, stamp_at = time.time(), i
        out.append(access_line(v4(i % 3, (i // 3) % 250), f"/shop/item/{i}.html", 200, t))
    out.append(access_line(marker, "/no-such-page", 404, time.time()))
    return out


def load_lines_fail(n, marker):
    """n-1 failure lines from 750 addresses, then one from the marker."""
    out, t, stamp_at = [], time.time(), 0
    for i in range(n - 1):
        if i - stamp_at >= 1000:
            t, stamp_at = time.time(), i
        out.append(access_line(f"2001:db8:1::{i % 750:x}", f"/missing/{i}", 404, t))
    out.append(access_line(marker, "/missing/last", 404, time.time()))
    return out


def run(args):
    d = Daemon(args)
    result = {"flavour": args.flavour, "command": " ".join(d.server_cmd)}
    try:
        d.write_config()
        result["start_seconds"] = d.start()
        time.sleep(2)
        result["mem_start"] = d.memory()
        n = args.bans
        # nginx-404: 198.51.100.x then 203.0.113.x; sshd: 192.0.2.x (n <= 250 each).
        result["latency_nginx404"] = measure_latency(
            d, "access.log", lambda ip, t: access_line(ip, "/missing.html", 404, t),
            [v4(1 + i // 250, i % 250) for i in range(n)], args.gap)
        result["latency_sshd"] = measure_latency(
            d, "auth.log", sshd_line, [v4(0, i) for i in range(n)], args.gap)
        result["mem_after_bans"] = d.memory()
        ok_marker, fail_marker = "2001:db8:ffff::1", "2001:db8:ffff::2"
        a = measure_throughput(d, "access.log", "nginx-404", load_lines_ok(args.lines, ok_marker),
                               ok_marker, args.timeout)
        a["lines_per_second"] = args.lines / a["seconds"]
        result["throughput_access"] = a
        b = measure_throughput(d, "load.log", "nginx-load", load_lines_fail(args.lines, fail_marker),
                               fail_marker, args.timeout)
        b["lines_per_second"] = args.lines / b["seconds"]
        result["throughput_failures"] = b
        time.sleep(1)
        result["mem_after_load"] = d.memory()
        result["checks"] = {
            "nginx-load total failed": d.status_field("nginx-load", "Total failed"),
            "nginx-load expected": args.lines,
            "nginx-404 total banned": d.status_field("nginx-404", "Total banned"),
            "nginx-404 expected": n + 1,
            "sshd total banned": d.status_field("sshd", "Total banned"),
            "sshd expected": n,
        }
    except BenchError as e:
        result["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - report, do not leave the daemon running
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        result["stop"] = d.stop()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flavour", choices=["fail2ban", "ferroban"], required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--bin", help="ferroban binary")
    p.add_argument("--f2b-root", default=os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root"))
    p.add_argument("--python", default=os.environ.get("FERROBAN_F2B_PYTHON", "/usr/bin/python3"))
    p.add_argument("--bans", type=int, default=100, help="bans per latency series (100..250)")
    p.add_argument("--gap", type=float, default=0.02, help="seconds between latency lines")
    p.add_argument("--lines", type=int, default=20000, help="lines per throughput run")
    p.add_argument("--timeout", type=float, default=240, help="seconds allowed per throughput run")
    args = p.parse_args()
    if not 100 <= args.bans <= 250:
        p.error("--bans must be 100..250 (distinct documentation addresses per series)")
    if args.flavour == "ferroban" and not args.bin:
        p.error("--bin is needed for ferroban")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(json.dumps(run(args), indent=1))


if __name__ == "__main__":
    main()
