#!/usr/bin/env python3
"""A large append while the control socket is used: how long `status` takes during ingest.

One daemon at a time (fail2ban-server 1.0.2, then `ferroban server`), under bench/daemon/run.py's
configuration (the guide's 12 jails; five of them read access.log). Measured:
  * ingest: BENCH_INGEST_LINES (default 1,000,000) ordinary nginx lines plus one 404 marker
    appended to access.log at once; seconds until the daemon's log shows nginx-404's Found of the
    marker (every line before it was read and matched by that jail);
  * `client status` wall time (process start included) while that ingest runs, every 20 ms, and
    the same request on the idle daemon before (the baseline: client start-up + round trip).
With --socket (ferroban only) the probes go over the control socket directly (its JSON protocol,
no client process), timed from connect to answer: `status`, `status nginx-404` (a jail reading
the append) and `status sshd` (a jail with nothing to read), in turn every 20 ms.
Prints one JSON object per daemon. Not a test: figures go to BENCHMARKS.md.

  bench/ingest.py --flavour ferroban --bin target/release/ferroban --workdir bench/out/ingest-fb
"""

import argparse
import importlib.util
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("daemon_run", os.path.join(HERE, "daemon", "run.py"))
run_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_mod)


def timed_status(d):
    t0 = time.perf_counter()
    r = d.client("status", timeout=120)
    dt = time.perf_counter() - t0
    return dt, r.returncode == 0


# The requests of --socket.
SOCKET_PROBES = [["status"], ["status", "nginx-404"], ["status", "sshd"]]


def timed_request(d, argv):
    """`argv` over ferroban's socket: seconds from connect to the answer, and whether it is one."""
    t0 = time.perf_counter()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(120)
        s.connect(d.sock)
        s.sendall((json.dumps({"v": 1, "argv": argv}) + "\n").encode())
        answer = s.makefile("rb").readline()
    return time.perf_counter() - t0, answer.endswith(b"\n")


def probe(d, args):
    """One round of probes: (name, seconds, answered) for each."""
    if not args.socket:
        return [("status", *timed_status(d))]
    return [(" ".join(k), *timed_request(d, k)) for k in SOCKET_PROBES]


def summary(values):
    v = sorted(values)
    if not v:
        return {}
    return {
        "n": len(v),
        "median_ms": round(statistics.median(v) * 1000, 1),
        "p90_ms": round(run_mod.percentile(v, 90) * 1000, 1),
        "max_ms": round(v[-1] * 1000, 1),
    }


def run(args):
    d = run_mod.Daemon(args)
    result = {"flavour": args.flavour, "lines": args.lines, "load": os.getloadavg()}
    try:
        d.write_config()
        d.start()
        time.sleep(2)
        idle = {}
        for _ in range(10):
            for name, dt, _ok in probe(d, args):
                idle.setdefault(name, []).append(dt)
        result["status_idle"] = {k: summary(v) for k, v in idle.items()}
        marker = "2001:db8:ffff::9"
        lines = run_mod.load_lines_ok(args.lines, marker)
        body = "".join(lines)
        del lines
        log = run_mod.Tail(d.log)
        needle = f"[nginx-404] Found {marker} "
        during, failures = {}, 0
        done = threading.Event()

        def prober():
            nonlocal failures
            while not done.is_set():
                for name, dt, ok in probe(d, args):
                    if not done.is_set():
                        during.setdefault(name, []).append(dt)
                        failures += 0 if ok else 1
                time.sleep(0.02)

        t = threading.Thread(target=prober)
        start = time.time()
        with open(d.path("access.log"), "a") as f:
            f.write(body)
        t.start()
        deadline = start + args.timeout
        took = None
        while time.time() < deadline:
            if any(needle in line for line in log.lines()):
                took = time.time() - start
                break
            time.sleep(0.005)
        done.set()
        t.join()
        result["status_during_ingest"] = {k: summary(v) for k, v in during.items()}
        result["status_failures"] = failures
        if took is None:
            raise run_mod.BenchError(f"no {needle.strip()!r} within {args.timeout} s")
        result["ingest_seconds"] = round(took, 3)
        result["ingest_lines_per_second"] = round(args.lines / took)
    except run_mod.BenchError as e:
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
    p.add_argument("--lines", type=int, default=int(os.environ.get("BENCH_INGEST_LINES", 1000000)))
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--socket", action="store_true", help="probe over the socket (ferroban)")
    args = p.parse_args()
    if args.flavour == "ferroban" and not args.bin:
        p.error("--bin is needed for ferroban")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(json.dumps(run(args), indent=1))


if __name__ == "__main__":
    main()
