#!/usr/bin/env python3
"""Prints bench/daemon.sh's Markdown table from the runners' JSON files.

    report.py [--backend TEXT] [--lines N] [--bans N] FAIL2BAN.json FERROBAN.json

A missing file is a daemon that was not run; a file with "error" is one that could not be
measured: its column says why, and figures it did get before the error are still shown.
"""

import argparse
import json
import os


def load(path, name):
    if not os.path.exists(path):
        return {"error": f"{name} not run"}
    with open(path) as f:
        return json.load(f)


def get(result, *keys):
    v = result
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


ROWS = [
    ("start: until ready (s)", ("start_seconds",), "{:.2f}", "low"),
    ("VmRSS after start (MiB)", ("mem_start", "VmRSS"), "{:.1f}", "low"),
    ("VmHWM after start (MiB)", ("mem_start", "VmHWM"), "{:.1f}", "low"),
    ("ban latency nginx-404, median (ms)", ("latency_nginx404", "median_ms"), "{:.1f}", "low"),
    ("ban latency nginx-404, p99 (ms)", ("latency_nginx404", "p99_ms"), "{:.1f}", "low"),
    ("ban latency sshd, median (ms)", ("latency_sshd", "median_ms"), "{:.1f}", "low"),
    ("ban latency sshd, p99 (ms)", ("latency_sshd", "p99_ms"), "{:.1f}", "low"),
    ("VmRSS after the bans (MiB)", ("mem_after_bans", "VmRSS"), "{:.1f}", "low"),
    ("lines/s, 200 lines through 5 access.log jails", ("throughput_access", "lines_per_second"), "{:,.0f}", "high"),
    ("lines/s, failure lines into 1 jail (no ban)", ("throughput_failures", "lines_per_second"), "{:,.0f}", "high"),
    ("VmRSS after the load (MiB)", ("mem_after_load", "VmRSS"), "{:.1f}", "low"),
    ("VmHWM after the load (MiB)", ("mem_after_load", "VmHWM"), "{:.1f}", "low"),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="?")
    p.add_argument("--lines", default="?")
    p.add_argument("--bans", default="?")
    p.add_argument("fail2ban")
    p.add_argument("ferroban")
    a = p.parse_args()
    f2b, fer = load(a.fail2ban, "fail2ban"), load(a.ferroban, "ferroban")

    print("| measure | fail2ban-server 1.0.2 | ferroban server | ferroban vs fail2ban |")
    print("|---|---:|---:|---:|")
    for label, keys, fmt, better in ROWS:
        x, y = get(f2b, *keys), get(fer, *keys)
        cells = [fmt.format(v) if v is not None else "—" for v in (x, y)]
        ratio = "—"
        if x and y:
            r = (x / y) if better == "low" else (y / x)
            ratio = f"{r:.1f}x {'better' if r >= 1 else 'worse'}"
        print(f"| {label} | {cells[0]} | {cells[1]} | {ratio} |")
    print()
    print(f"Latency: {a.bans} bans per jail, maxretry = 1, one line at a time; throughput: {a.lines} lines "
          f"per run; fail2ban's backend: {a.backend}.")
    for name, r in (("fail2ban", f2b), ("ferroban", fer)):
        notes = []
        if r.get("error"):
            notes.append(f"NOT MEASURED (fully): {r['error']}")
        for series in ("latency_nginx404", "latency_sshd"):
            missing = get(r, series, "missing")
            if missing:
                notes.append(f"{series}: {missing} bans not seen within 10 s")
        checks = r.get("checks") or {}
        for what in ("nginx-load total failed", "nginx-404 total banned", "sshd total banned"):
            if what in checks:
                want = checks[what.rsplit(" ", 2)[0] + " expected"]
                mark = "ok" if checks[what] == want else "MISMATCH"
                notes.append(f"{what} {checks[what]} (expected {want}: {mark})")
        if r.get("stop"):
            notes.append(r["stop"])
        print(f"- {name}: " + "; ".join(notes))


if __name__ == "__main__":
    main()
