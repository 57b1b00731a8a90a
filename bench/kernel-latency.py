#!/usr/bin/env python3
"""Time from a failure line appended to a log to the banned address present in the kernel's
nftables set, for ferroban (native `ferroban-nftables`) and fail2ban-server 1.0.2 (its
`nftables-multiport` shell action), one after the other, in a network namespace of its own.

    sudo bench/kernel-latency.py [N]        # N bans per daemon (default 100)

Each daemon gets a scratch configuration (for fail2ban: a copy of the reference's etc/fail2ban)
with one jail (maxretry = 1) reading a scratch log. `nft monitor` in the namespace reports
every element added; the clock stops when the address appears. Lines are written one at a time,
a distinct address each, 50 ms apart. Environment: FERROBAN_BIN (default target/release/ferroban),
FERROBAN_F2B_ROOT (default /tmp/f2b/root). Nothing outside the namespace is touched.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
FERROBAN = os.environ.get("FERROBAN_BIN", os.path.join(REPO, "target/release/ferroban"))
F2B = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
FILTER = '[Definition]\nfailregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)\nignoreregex =\n'


def line(ip):
    t = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{ip} - - [{t}] "GET /missing HTTP/1.1" 404 153 "-" "bench"\n'


def run(name, ns, work):
    cfg = os.path.join(work, "etc")
    log = os.path.join(work, "access.log")
    open(log, "w").close()
    if name == "fail2ban":
        shutil.copytree(os.path.join(F2B, "etc/fail2ban"), cfg)
        banaction = "nftables-multiport"
        argv = ["python3", os.path.join(F2B, "usr/bin/fail2ban-server")]
        env = dict(os.environ, PYTHONPATH=os.path.join(F2B, "usr/lib/python3/dist-packages"))
    else:
        os.makedirs(os.path.join(cfg, "filter.d"))
        banaction = "ferroban-nftables"
        argv = [FERROBAN, "server"]
        env = dict(os.environ)
    os.makedirs(os.path.join(cfg, "filter.d"), exist_ok=True)
    with open(os.path.join(cfg, "filter.d/bench-404.conf"), "w") as f:
        f.write(FILTER)
    with open(os.path.join(cfg, "fail2ban.local"), "w") as f:
        f.write(f"[Definition]\ndbfile = {work}/db.sqlite3\n")
    with open(os.path.join(cfg, "jail.local"), "w") as f:
        f.write(
            f"[DEFAULT]\nbanaction = {banaction}\nignoreself = false\n[sshd]\nenabled = false\n"
            f"[bench]\nenabled = true\nfilter = bench-404\nport = http\nlogpath = {log}\n"
            "maxretry = 1\nbantime = 1h\nfindtime = 10m\n"
        )
    seen = {}
    mon = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "monitor", "new", "elements"],
                           stdout=subprocess.PIPE, text=True)

    def reader():
        for out in mon.stdout:
            now = time.monotonic()
            for word in out.replace("{", " ").replace("}", " ").replace(",", " ").split():
                if word.count(".") == 3 and word not in seen:
                    seen[word] = now

    threading.Thread(target=reader, daemon=True).start()
    sock = os.path.join(work, "s.sock")
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns] + argv + ["-f", "-x", "-c", cfg, "-s", sock, "-p",
                                               os.path.join(work, "p.pid"), "--logtarget",
                                               os.path.join(work, "daemon.log")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(sock) and "Jail 'bench' started" in open(os.path.join(work, "daemon.log")).read():
                break
            time.sleep(0.1)
        # Warm-up ban (fail2ban creates its table/set on the first ban).
        lat = []
        for i in range(N + 1):
            ip = f"198.51.{100 + i // 250}.{i % 250 + 1}"
            t0 = time.monotonic()
            with open(log, "a") as f:
                f.write(line(ip))
            end = time.monotonic() + 10
            while ip not in seen and time.monotonic() < end:
                time.sleep(0.0002)
            if ip not in seen:
                raise RuntimeError(f"{name}: {ip} not in the kernel after 10 s")
            if i > 0:
                lat.append((seen[ip] - t0) * 1000)
            time.sleep(0.05)
        return lat
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        mon.terminate()


def main():
    results = {}
    for name in ("fail2ban", "ferroban"):
        ns = f"fb-lat-{os.getpid()}-{name}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        work = tempfile.mkdtemp(prefix=f"ferroban-lat-{name}-")
        try:
            subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
            results[name] = run(name, ns, work)
        except Exception as e:  # report and go on with the other daemon
            results[name] = str(e)
        finally:
            subprocess.run(["ip", "netns", "del", ns])
            shutil.rmtree(work, ignore_errors=True)
    print(f"| daemon | bans | median ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    for name, lat in results.items():
        if isinstance(lat, str):
            print(f"| {name} | - | NOT MEASURED: {lat} | | |")
            continue
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        print(f"| {name} | {len(lat)} | {statistics.median(lat):.1f} | {p99:.1f} | {lat[-1]:.1f} |")


if __name__ == "__main__":
    main()
