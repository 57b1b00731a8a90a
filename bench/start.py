#!/usr/bin/env python3
"""Lean start: resident memory and time to the first answered `ping`, with the guide's 12 jails.

    bench/start.py [--bin target/release/ferroban] [--runs 5] [--json OUT]

The guide's `jail.local` and `jail.d/custom.conf` are read at run time from
crates/testkit/src/guide.rs (the tests' one copy, verbatim) and written into a scratch
configuration directory; ferroban's embedded defaults provide the filters and actions. As in
that test, the daemon runs in private mount and network namespaces (`unshare --mount --net`)
with fresh tmpfs mounts on /var/log, /var/lib and /etc/ufw (when the host has one: there is nothing
to cover otherwise) and a `ufw` stand-in first on PATH, so nothing reaches the host's firewall or
logs. Needs root.

Per run:
  * start: from spawning the wrapper until the daemon's control socket answers `ping` (the
    socket is polled every 0.5 ms and the request is sent on the first connection); the same
    wrapper exec'ing /bin/true is timed too and reported as the wrapper's own cost;
  * VmRSS of the daemon at that moment, and again 1 s later (what the idle daemon holds);
  * exec to ping: the daemon started a second time without the wrapper's programs (unshare,
    sh, mount): this script forks, makes the namespaces and mounts in the child itself
    (unshare(2), mount(2) through ctypes), notes the monotonic clock as the child's last step
    before execve(2), and times from that instant to the `ping` answer: the daemon's own start,
    without the cost of starting the wrapper's processes.
Reported: the median over the runs (and every run). Every wait is bounded.

    bench/start.py --callgrind OUT [--runs 2]

counts instructions instead: each run starts the daemon under `valgrind --tool=callgrind` in the
same namespaces and dumps (`callgrind_control -d`) the moment the socket answers `ping`: OUT.PID.1
holds exec to the first answered ping (all threads; valgrind runs them one at a time).
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def guide_files():
    src = open(os.path.join(REPO, "crates/testkit/src/guide.rs"), encoding="utf-8").read()
    out = {}
    for name in ("JAIL_LOCAL", "CUSTOM_CONF"):
        m = re.search(r"pub const %s: &str = r#\"(.*?)\"#;" % name, src, re.S)
        if not m:
            sys.exit(f"bench/start.py: {name} not found in crates/testkit/src/guide.rs")
        out[name] = m.group(1)
    return out


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


# The guide's log files (under /var/log), made empty in each run's fresh /var/log.
LOGS = ("auth.log", "nginx/access.log", "nginx/error.log", "ufw.log", "fastapi/auth.log")
LOG_DIRS = ("nginx", "fastapi")


# Covered by fresh tmpfs mounts; /etc/ufw only if the host has one.
def covered():
    mounts = [("/var/log", "bench-start-log"), ("/var/lib", "bench-start-lib")]
    if os.path.isdir("/etc/ufw"):
        mounts.append(("/etc/ufw", "bench-start-ufw"))
    return mounts


def wrapper(d, exe_cmd):
    script = (
        " && ".join(f"mount -t tmpfs {name} {target}" for target, name in covered())
        + " "
        f"&& mkdir -p {' '.join('/var/log/' + s for s in LOG_DIRS)} "
        f"&& touch {' '.join('/var/log/' + f for f in LOGS)} "
        f"&& exec {exe_cmd}"
    )
    return ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script]


CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def direct_child(stamp_fd):
    """In the forked child before execve: the wrapper's namespaces and mounts, made by system
    calls instead of programs; writes the monotonic clock (ns) to `stamp_fd` last."""
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc, what):
        if rc != 0:
            raise OSError(ctypes.get_errno(), what)

    check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    for target, name in covered():
        check(libc.mount(name.encode(), target.encode(), b"tmpfs", 0, None), "mount " + target)
    for sub in LOG_DIRS:
        os.makedirs("/var/log/" + sub, exist_ok=True)
    for f in LOGS:
        open("/var/log/" + f, "a").close()
    os.write(stamp_fd, str(time.monotonic_ns()).encode())
    os.close(stamp_fd)


def ping(sock_path, deadline):
    """Polls until the socket answers ping; returns the time of the answer."""
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock_path)
        except OSError:
            s.close()
            time.sleep(0.0005)
            continue
        try:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.sendall(b'{"v":1,"argv":["ping"]}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            t = time.monotonic()
            if b"pong" in buf:
                return t
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.0005)
    raise RuntimeError("no answer to ping within the time limit")


def fresh_socket(d):
    """The socket path, with the last run's socket and pid file removed."""
    sock = os.path.join(d, "ferroban.sock")
    for p in (sock, os.path.join(d, "ferroban.pid")):
        if os.path.exists(p):
            os.unlink(p)
    return sock


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_run(binary, d, env, smaps=None):
    sock = fresh_socket(d)
    cmd = wrapper(d, f"{binary} server -f -x -c {d}/etc -s {sock} -p {d}/ferroban.pid --logtarget STDERR")
    err = open(os.path.join(d, "server.err"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        t1 = ping(sock, t0 + 30)
        at_ping = rss_kb(proc.pid)
        time.sleep(1.0)
        settled = rss_kb(proc.pid)
        # What the resident set is made of: the heap and other private memory (RssAnon) and
        # pages of mapped files, mostly the binary's own code and data (RssFile).
        anon, file = rss_kb(proc.pid, "RssAnon"), rss_kb(proc.pid, "RssFile")
        if smaps:
            shutil.copyfile(f"/proc/{proc.pid}/smaps", smaps)
        return {
            "start_ms": (t1 - t0) * 1000.0,
            "rss_kb_at_ping": at_ping,
            "rss_kb_after_1s": settled,
            "rss_anon_kb_after_1s": anon,
            "rss_file_kb_after_1s": file,
        }
    finally:
        stop(proc)


def direct_run(binary, d, env):
    """Exec to the first answered ping (see the module's documentation); returns ms and the
    daemon's VmRSS then."""
    sock = fresh_socket(d)
    argv = [binary, "server", "-f", "-x", "-c", f"{d}/etc", "-s", sock, "-p", f"{d}/ferroban.pid", "--logtarget", "STDERR"]
    r, w = os.pipe()
    err = open(os.path.join(d, "server-direct.err"), "w")
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        pass_fds=(w,), preexec_fn=lambda: direct_child(w),
    )
    os.close(w)
    try:
        stamp = b""
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            stamp += chunk
        os.close(r)
        t_exec = int(stamp) / 1e9
        t1 = ping(sock, time.monotonic() + 30)
        return (t1 - t_exec) * 1000.0, rss_kb(proc.pid)
    finally:
        stop(proc)


def wrapper_cost(d, env):
    t0 = time.monotonic()
    subprocess.run(wrapper(d, "/bin/true"), env=env, check=True, timeout=30)
    return (time.monotonic() - t0) * 1000.0


def callgrind_run(binary, d, env, out):
    """One start under `valgrind --tool=callgrind` in the same namespaces, dumped with
    `callgrind_control -d` the moment the socket answers `ping`; returns the dump's file and its
    instruction count (exec to the first answered ping, all threads)."""
    sock = fresh_socket(d)
    cmd = wrapper(
        d,
        f"valgrind --tool=callgrind --callgrind-out-file={out}.%p "
        f"{binary} server -f -x -c {d}/etc -s {sock} -p {d}/ferroban.pid --logtarget STDERR",
    )
    err = open(os.path.join(d, "server-callgrind.err"), "w")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        ping(sock, time.monotonic() + 120)
        subprocess.run(
            ["callgrind_control", "-d", str(proc.pid)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )
        dump = f"{out}.{proc.pid}.1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(dump):
                for line in open(dump):
                    if line.startswith("summary:"):
                        return dump, int(line.split()[1])
            time.sleep(0.1)
        raise RuntimeError(f"no callgrind dump {dump}")
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ferroban"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--smaps", help="copy the last run's /proc/PID/smaps (after 1 s) to this file")
    ap.add_argument(
        "--callgrind",
        metavar="OUT",
        help="instead of the timed runs: --runs starts under callgrind, each dumped at the first "
        "answered ping to OUT.PID.1 (callgrind_annotate --inclusive=yes reads them)",
    )
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/start.py needs root (private mount and network namespaces)")
    files = guide_files()
    d = tempfile.mkdtemp(prefix="ferroban-start-")
    try:
        os.makedirs(os.path.join(d, "etc/jail.d"))
        with open(os.path.join(d, "etc/jail.local"), "w") as f:
            f.write(files["JAIL_LOCAL"])
        with open(os.path.join(d, "etc/jail.d/custom.conf"), "w") as f:
            f.write(files["CUSTOM_CONF"])
        os.makedirs(os.path.join(d, "bin"))
        ufw = os.path.join(d, "bin/ufw")
        with open(ufw, "w") as f:
            f.write("#!/bin/sh\ncase \"$1\" in status) echo 'Status: active';; esac\nexit 0\n")
        os.chmod(ufw, 0o755)
        env = dict(os.environ, PATH=f"{d}/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if a.callgrind:
            counts = []
            for _ in range(a.runs):
                dump, n = callgrind_run(os.path.abspath(a.bin), d, env, os.path.abspath(a.callgrind))
                counts.append(n)
                print(f"{dump}: {n:,} instructions from exec to the first answered ping")
            print(f"median {statistics.median(counts):,.0f} instructions (of {a.runs} runs)")
            return
        runs = []
        wrap = []
        for _ in range(a.runs):
            wrap.append(wrapper_cost(d, env))
            run = one_run(os.path.abspath(a.bin), d, env, a.smaps)
            run["exec_ms"], run["rss_kb_at_ping_direct"] = direct_run(os.path.abspath(a.bin), d, env)
            runs.append(run)
        res = {
            "bin": a.bin,
            "runs": runs,
            "wrapper_ms_median": statistics.median(wrap),
            "start_ms_median": statistics.median(r["start_ms"] for r in runs),
            "exec_ms_median": statistics.median(r["exec_ms"] for r in runs),
            "rss_mb_at_ping_direct_median": statistics.median(r["rss_kb_at_ping_direct"] for r in runs) / 1024.0,
            "rss_mb_at_ping_median": statistics.median(r["rss_kb_at_ping"] for r in runs) / 1024.0,
            "rss_mb_after_1s_median": statistics.median(r["rss_kb_after_1s"] for r in runs) / 1024.0,
            "rss_anon_mb_median": statistics.median(r["rss_anon_kb_after_1s"] for r in runs) / 1024.0,
            "rss_file_mb_median": statistics.median(r["rss_file_kb_after_1s"] for r in runs) / 1024.0,
            "load": open("/proc/loadavg").read().split()[:3],
        }
        print(
            f"start to first ping: median {res['start_ms_median']:.1f} ms "
            f"(of which the namespace wrapper ~{res['wrapper_ms_median']:.1f} ms); "
            f"exec to first ping (no wrapper): median {res['exec_ms_median']:.1f} ms "
            f"(RSS then {res['rss_mb_at_ping_direct_median']:.1f} MB); "
            f"RSS at ping {res['rss_mb_at_ping_median']:.1f} MB, after 1 s {res['rss_mb_after_1s_median']:.1f} MB "
            f"(anonymous {res['rss_anon_mb_median']:.1f} MB, file-backed {res['rss_file_mb_median']:.1f} MB) "
            f"(median of {a.runs}; load {' '.join(res['load'])})"
        )
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
