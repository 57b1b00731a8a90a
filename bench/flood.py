#!/usr/bin/env python3
"""A flood of failures from distinct IPv6 addresses (none reaching maxretry) with one real attacker
among them: the daemon's RSS over time, and whether (and how fast) the attacker is banned.
ferroban and fail2ban-server 1.0.2 one after the other, each in a network namespace of its own
(the jail has no action: nothing is firewalled). Not a test.

    sudo bench/flood.py [LINES]        # default 2,000,000 flood lines

The flood is appended to the jail's log in blocks of 50,000 lines as fast as the daemon takes
them (the writer waits while the daemon is more than 200,000 lines behind, so the file does not
grow without bound); RSS (VmRSS of the server) is sampled every 0.5 s. The attacker
(2001:db8:bad::1) fails maxretry (5) times, 100 flood lines apart, in the middle of the flood.
Each daemon is stopped at FLOOD_LIMIT seconds (default 300) if it has not read everything.
Writes bench/out/flood/rss.csv (daemon,seconds,lines_read,rss_kib) and prints a Markdown table.
Environment: FERROBAN_BIN, FERROBAN_F2B_ROOT, FLOOD_DAEMONS ("ferroban fail2ban").
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERROBAN = os.environ.get("FERROBAN_BIN", os.path.join(REPO, "target/release/ferroban"))
F2B = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
LINES = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
LIMIT = float(os.environ.get("FLOOD_LIMIT", "300"))
DAEMONS = os.environ.get("FLOOD_DAEMONS", "ferroban fail2ban").split()
OUT = os.path.join(REPO, "bench/out/flood")
ATTACKER = "2001:db8:bad::1"
BLOCK = 50_000
FILTER = '[Definition]\nfailregex = ^<HOST> -.* "(GET|POST).* HTTP/.*" (404|403)\nignoreregex =\n'


def rss_kib(pid):
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    except OSError:
        return None
    return None


def found_count(path):
    # Lines the daemon has taken: its "Found" log lines (both daemons log one per failure).
    try:
        out = subprocess.run(["grep", "-c", "] Found ", path], capture_output=True, text=True).stdout
        return int(out.strip() or 0)
    except ValueError:
        return 0


def run(name):
    ns = f"fb-flood-{os.getpid()}-{name[:2]}"
    work = tempfile.mkdtemp(prefix=f"ferroban-flood-{name}-")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    cfg = os.path.join(work, "etc")
    log = os.path.join(work, "access.log")
    dlog = os.path.join(work, "daemon.log")
    sock = os.path.join(work, "s.sock")
    open(log, "w").close()
    if name == "fail2ban":
        shutil.copytree(os.path.join(F2B, "etc/fail2ban"), cfg)
        server = ["python3", os.path.join(F2B, "usr/bin/fail2ban-server")]
        env = dict(os.environ, PYTHONPATH=os.path.join(F2B, "usr/lib/python3/dist-packages"))
    else:
        os.makedirs(cfg)
        server = [FERROBAN, "server"]
        env = dict(os.environ)
    os.makedirs(os.path.join(cfg, "filter.d"), exist_ok=True)
    open(os.path.join(cfg, "filter.d/bench-404.conf"), "w").write(FILTER)
    open(os.path.join(cfg, "fail2ban.local"), "w").write(f"[Definition]\ndbfile = {work}/db.sqlite3\n")
    open(os.path.join(cfg, "jail.local"), "w").write(
        "[DEFAULT]\nignoreself = false\n[sshd]\nenabled = false\n"
        f"[bench]\nenabled = true\nfilter = bench-404\naction =\nlogpath = {log}\n"
        "maxretry = 5\nbantime = 1d\nfindtime = 1h\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns] + server +
                            ["-f", "-x", "-c", cfg, "-s", sock, "-p", os.path.join(work, "p.pid"),
                             "--logtarget", dlog], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    result = {"daemon": name}
    try:
        deadline = time.time() + 60
        while not (os.path.exists(dlog) and "Jail 'bench' started" in open(dlog, errors="replace").read()):
            if time.time() > deadline:
                raise RuntimeError("did not start")
            time.sleep(0.1)
        t = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        tail = f' - - [{t}] "GET /missing HTTP/1.1" 404 153 "-" "flood"\n'
        attack_at = LINES // 2
        written = 0
        attacker_written_at = None
        t0 = time.monotonic()
        last_sample = 0.0
        rss0 = rss_kib(proc.pid)
        samples.append((0.0, 0, rss0))
        with open(log, "a") as f:
            while written < LINES and time.monotonic() - t0 < LIMIT:
                read = found_count(dlog)
                now = time.monotonic() - t0
                if now - last_sample >= 0.5:
                    samples.append((now, read, rss_kib(proc.pid)))
                    last_sample = now
                if written - read > 200_000:
                    time.sleep(0.1)
                    continue
                buf = []
                for i in range(written, min(LINES, written + BLOCK)):
                    # Distinct addresses: 2001:db8:f:<i as four hex groups>.
                    buf.append(f"2001:db8:f:{(i >> 48) & 0xffff:x}:{(i >> 32) & 0xffff:x}:"
                               f"{(i >> 16) & 0xffff:x}:{i & 0xffff:x}:1{tail}")
                    if attack_at <= i < attack_at + 500 and (i - attack_at) % 100 == 0:
                        buf.append(ATTACKER + tail)
                f.write("".join(buf))
                f.flush()
                if attacker_written_at is None and written + BLOCK > attack_at:
                    attacker_written_at = time.monotonic()
                written = min(LINES, written + BLOCK)
        # Wait for the daemon to read the rest (bounded).
        while time.monotonic() - t0 < LIMIT:
            read = found_count(dlog)
            now = time.monotonic() - t0
            if now - last_sample >= 0.5:
                samples.append((now, read, rss_kib(proc.pid)))
                last_sample = now
            if read >= written + 5:
                break
            time.sleep(0.2)
        read = found_count(dlog)
        samples.append((time.monotonic() - t0, read, rss_kib(proc.pid)))
        text = open(dlog, errors="replace").read()
        m = re.search(r"^(\S+ \S+) .*\] Ban " + re.escape(ATTACKER) + r"\s*$", text, re.M)
        result.update(written=written, read=read, seconds=samples[-1][0],
                      rss_start=rss0, rss_peak=max(s[2] or 0 for s in samples), rss_end=samples[-1][2],
                      attacker_banned=bool(m))
        evicted = re.findall(r"(\d+) evicted in total", text)
        result["evicted"] = evicted[-1] if evicted else "0"
    except Exception as e:
        result["error"] = str(e)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(work, ignore_errors=True)
    return result, samples


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    with open(os.path.join(OUT, "rss.csv"), "w") as csv:
        csv.write("daemon,seconds,lines_read,rss_kib\n")
        for name in DAEMONS:
            print(f"flood: {name} ...", file=sys.stderr, flush=True)
            r, samples = run(name)
            print(f"flood: {name}: {r}", file=sys.stderr, flush=True)
            for s, n, rss in samples:
                csv.write(f"{name},{s:.2f},{n},{rss if rss is not None else ''}\n")
            rows.append(r)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"\nFlood of {LINES:,} failures from distinct IPv6 addresses, one attacker (maxretry 5) among them "
          f"(load {load}, {os.cpu_count()} cores; RSS in MiB)\n")
    print("| daemon | lines read | seconds | RSS start | RSS peak | RSS end | attacker banned | evicted |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['daemon']} | NOT MEASURED: {r['error']} |||||||")
            continue
        mib = lambda k: f"{(r[k] or 0) / 1024:.1f}"
        print(f"| {r['daemon']} | {r['read']:,} of {r['written']:,} | {r['seconds']:.1f} | {mib('rss_start')} | "
              f"{mib('rss_peak')} | {mib('rss_end')} | {'yes' if r['attacker_banned'] else 'no'} | {r['evicted']} |")


if __name__ == "__main__":
    main()
