#!/usr/bin/env python3
"""Does scraping /metrics slow ingestion? A 1,000,000-line ingest, with and without a scraper.

    bench/metrics-scrape.py --bin target/release/ferroban [--lines 1000000] [--runs 3]
                            [--interval 0.1] [--out bench/out/metrics]

One `ferroban server` (foreground, a scratch configuration: one jail whose filter matches every
line, maxretry never reached, an action that does nothing; `metrics = 127.0.0.1:PORT` in
fail2ban.local, so the endpoint is on in both cases) is started per run. The whole log (N nginx
404 lines from 256 documentation addresses, dated now) is appended in one write, and the run ends
when `ferroban client status bench` reports N failures (polled every 50 ms through the control
socket, the same in both cases). Runs alternate: no scraper, scraper (GET /metrics every
`--interval` s from a thread, over loopback TCP). Each scraped run also records, from its scrapes,
lines read and resident memory over time (the ingest-rate and RSS figures of bench/plots.py).

Nothing is banned and no traffic is sent: the daemon only reads a file. Prints a Markdown table and
writes the raw figures to OUT/scrape.json.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(work, port):
    etc = os.path.join(work, "etc")
    os.makedirs(os.path.join(etc, "filter.d"), exist_ok=True)
    os.makedirs(os.path.join(etc, "action.d"), exist_ok=True)
    with open(os.path.join(etc, "fail2ban.local"), "w") as f:
        f.write(
            "[Definition]\n"
            f"logtarget = {work}/ferroban.log\n"
            f"dbfile = {work}/db.sqlite3\n"
            f"metrics = 127.0.0.1:{port}\n"
        )
    with open(os.path.join(etc, "filter.d", "bench404.conf"), "w") as f:
        f.write('[Definition]\nfailregex = ^<HOST> -.*" 404 \n')
    with open(os.path.join(etc, "action.d", "noop.conf"), "w") as f:
        f.write("[Definition]\nactionstart =\nactionstop =\nactionban =\nactionunban =\n")
    with open(os.path.join(etc, "jail.local"), "w") as f:
        f.write(
            "[bench]\nenabled = true\nfilter = bench404\naction = noop\n"
            f"logpath = {work}/access.log\nbackend = auto\n"
            "maxretry = 1000000000\nfindtime = 1d\nbantime = 60\nignoreself = false\n"
        )
    open(os.path.join(work, "access.log"), "w").close()
    return etc


def make_log(path, n):
    t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    with open(path, "w") as f:
        for i in range(n):
            ip = f"198.51.100.{i % 256}" if i % 2 else f"203.0.113.{i % 256}"
            f.write(f'{ip} - - [{t}] "GET /missing-{i % 977}.html HTTP/1.1" 404 153 "-" "bench"\n')


def status_failed(binary, sock):
    out = subprocess.run(
        [binary, "client", "-s", sock, "status", "bench"],
        capture_output=True, text=True, timeout=30,
    ).stdout
    m = re.search(r"Total failed:\s+(\d+)", out)
    return int(m.group(1)) if m else -1


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Scraper(threading.Thread):
    def __init__(self, url, interval, t0):
        super().__init__(daemon=True)
        self.url, self.interval, self.t0 = url, interval, t0
        self.stop = threading.Event()
        self.samples = []  # (t, lines read, rss bytes)
        self.count = 0
        self.errors = 0

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                body = urllib.request.urlopen(self.url, timeout=5).read().decode()
                self.count += 1
                read = metric(body, "ferroban_source_lines_read_total")
                rss = metric(body, "process_resident_memory_bytes")
                self.samples.append((time.monotonic() - self.t0, read, rss))
            except OSError:
                self.errors += 1
            nxt += self.interval
            self.stop.wait(max(0.0, nxt - time.monotonic()))


def one_run(binary, work, log, n, scrape, interval, timeout):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    port = free_port()
    etc = write_config(work, port)
    sock = os.path.join(work, "ferroban.sock")
    daemon = subprocess.Popen(
        [binary, "server", "-f", "-x", "-c", etc, "-s", sock, "-p", os.path.join(work, "pid")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while status_failed(binary, sock) < 0:
            if time.time() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/metrics"
        urllib.request.urlopen(url, timeout=5).read()
        t0 = time.monotonic()
        scraper = Scraper(url, interval, t0) if scrape else None
        if scraper:
            scraper.start()
        with open(log, "rb") as src, open(os.path.join(work, "access.log"), "ab") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        while True:
            got = status_failed(binary, sock)
            if got >= n:
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"only {got} of {n} failures after {timeout} s")
            time.sleep(0.05)
        took = time.monotonic() - t0
        res = {"scrape": scrape, "seconds": took, "lines_per_s": n / took}
        if scraper:
            scraper.stop.set()
            scraper.join()
            res.update(scrapes=scraper.count, scrape_errors=scraper.errors, samples=scraper.samples)
        return res
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3, help="runs per case")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--out", default="bench/out/metrics")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, f"access-{a.lines}.log")
    if not os.path.exists(log):
        make_log(log, a.lines)
    runs = []
    for i in range(a.runs):
        for scrape in (False, True):
            r = one_run(a.bin, os.path.join(a.out, "work"), log, a.lines, scrape, a.interval, a.timeout)
            print(f"run {i + 1} {'scraped' if scrape else 'plain  '}: {r['seconds']:.2f} s", file=sys.stderr)
            runs.append(r)
    shutil.rmtree(os.path.join(a.out, "work"), ignore_errors=True)
    plain = [r["seconds"] for r in runs if not r["scrape"]]
    scraped = [r["seconds"] for r in runs if r["scrape"]]
    summary = {
        "lines": a.lines,
        "interval_s": a.interval,
        "plain_median_s": statistics.median(plain),
        "scraped_median_s": statistics.median(scraped),
        "change_pct": 100.0 * (statistics.median(scraped) / statistics.median(plain) - 1.0),
        "load": os.getloadavg(),
        "runs": runs,
    }
    with open(os.path.join(a.out, "scrape.json"), "w") as f:
        json.dump(summary, f)
    print(f"| case | runs (s) | median (s) | lines/s |")
    print(f"|---|---|---:|---:|")
    for name, v in (("no scraper", plain), (f"GET /metrics every {a.interval * 1000:.0f} ms", scraped)):
        m = statistics.median(v)
        print(f"| {name} | {', '.join(f'{x:.2f}' for x in v)} | {m:.2f} | {a.lines / m:,.0f} |")
    sc = [r for r in runs if r["scrape"]]
    print(f"\nchange of the median: {summary['change_pct']:+.1f}%; scrapes per scraped run: "
          f"{', '.join(str(r['scrapes']) for r in sc)}; load average after: "
          f"{', '.join(f'{x:.2f}' for x in summary['load'])}")


if __name__ == "__main__":
    main()
