#!/usr/bin/env python3
"""Bans with a database and NO firewall: what the jail and its store cost, without nft or a
shell action. One `ferroban server` in a fresh network namespace (`unshare -n`, root), its
jail `bench` with `action =` and a dbfile; then either
  MODE=banip  N addresses (default 100,000) in ONE `set bench banip ...` request: seconds from
              the client's start to its answer, and until the daemon's log shows the last `Ban`;
  MODE=log    N addresses (default 20,000) x 3 failure lines appended to the jail's log at once:
              seconds until the log shows the last `Ban`.
Prints the figures and the bans counted in the database (all N: a logged `Ban` is stored).
PING=1 also sends `ferroban client ping` in a loop meanwhile (one client process at a time) and
prints how many answered and their round trips (median, max): how well the control socket is
served while the jail bans and its store writes (wall times: say the load).
PRE is put before the binary, e.g. for instruction counts (wall times under load are noise):

  PRE="valgrind --tool=callgrind --callgrind-out-file=cg.out" N=20000 bench/nofw_bans.py BIN
  EXTRA="bantime.increment = true" MODE=log bench/nofw_bans.py target/release/ferroban
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1]
MODE = os.environ.get("MODE", "banip")
N = int(os.environ.get("N", "100000" if MODE == "banip" else "20000"))
FILTER = '[Definition]\nfailregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)\nignoreregex =\n'

work = tempfile.mkdtemp(prefix="ferroban-nofw-")
cfg = os.path.join(work, "etc")
os.makedirs(os.path.join(cfg, "filter.d"))
with open(os.path.join(cfg, "filter.d/bench-404.conf"), "w") as f:
    f.write(FILTER)
with open(os.path.join(cfg, "fail2ban.local"), "w") as f:
    f.write(f"[Definition]\ndbfile = {work}/db.sqlite3\n")
log = os.path.join(work, "access.log")
open(log, "w").close()
with open(os.path.join(cfg, "jail.local"), "w") as f:
    f.write(f"[DEFAULT]\nignoreself = false\n[sshd]\nenabled = false\n[bench]\nenabled = true\n"
            f"filter = bench-404\nlogpath = {log}\naction =\nmaxretry = 3\nbantime = 1d\n"
            f"findtime = 1h\n{os.environ.get('EXTRA', '')}\n")
sock, dlog = os.path.join(work, "s.sock"), os.path.join(work, "daemon.log")
server = subprocess.Popen(
    ["unshare", "-n"] + os.environ.get("PRE", "").split()
    + [BIN, "server", "-f", "-x", "-c", cfg, "-s", sock, "-p", os.path.join(work, "p.pid"),
       "--logtarget", dlog],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def logged(text):
    with open(dlog, errors="replace") as f:
        return text in f.read()


try:
    deadline = time.time() + 300
    while time.time() < deadline and not (os.path.exists(dlog) and logged("Jail 'bench' started")):
        time.sleep(0.05)
    ips = [f"10.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in range(N)]
    answer = ""
    pings, done = [], threading.Event()

    def ping():
        while not done.is_set():
            t = time.perf_counter()
            subprocess.run([BIN, "client", "-s", sock, "ping"], capture_output=True)
            pings.append(time.perf_counter() - t)

    pinger = threading.Thread(target=ping)
    if os.environ.get("PING"):
        pinger.start()
    if MODE == "banip":
        t0 = time.perf_counter()
        r = subprocess.run([BIN, "client", "-s", sock, "set", "bench", "banip"] + ips,
                           capture_output=True, text=True)
        answer = f"answer {time.perf_counter() - t0:.3f} s ({r.stdout.strip()[:20]!r}), "
    else:
        now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        body = "".join(f'{ip} - - [{now}] "GET /x{k} HTTP/1.1" 404 0 "-" "bench"\n'
                       for k in range(3) for ip in ips)
        t0 = time.perf_counter()
        with open(log, "a") as f:
            f.write(body)
    while not logged(f"Ban {ips[-1]}\n"):
        time.sleep(0.02)
    t2 = time.perf_counter()
    done.set()
    if pinger.is_alive():
        pinger.join()
        p = sorted(pings)
        answer += (f"ping: {len(p)} answered, median {p[len(p) // 2] * 1000:.1f} ms, "
                   f"max {p[-1] * 1000:.1f} ms, " if p else "ping: none answered, ")
    n = sqlite3.connect(os.path.join(work, "db.sqlite3")).execute(
        "select count(*) from bans").fetchone()[0]
    print(f"{MODE} N={N}: {answer}last Ban logged {t2 - t0:.3f} s, bans in db {n}")
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
