#!/usr/bin/env python3
"""Every stock fail2ban 1.0.2 filter on its own sample log: lines/s of ferroban, fail2ban-regex
and (where it has a filter of the same name) fail2ban-rs 1.5.4.

    bench/filters.py [--bin target/release/ferroban] [--lines 100000] [--f2b-lines 5000]
                     [--peer bench/out/peer/root/bin/fail2ban-rs] [--only NAME ...]

For each filter.d/NAME.conf of the reference (FERROBAN_F2B_ROOT, default /tmp/f2b/root) that has
a sample log fail2ban/tests/files/logs/NAME, the sample's log lines (annotation and empty lines
dropped) are repeated into bench/out/filters/NAME.log until it has at least --lines lines (read
from the reference at run time; nothing is copied into the repository). Then:

Both fail2ban-regex and ferroban run with `-r` (raw hosts: several samples hold host names, and
DNS look-ups would measure the resolver, not the filter).

  * ferroban:  `ferroban regex -r -c ETC LOG NAME`, wall time of the whole run (start-up included);
  * fail2ban-regex 1.0.2 on the first --f2b-lines lines only (it is ~50-100x slower), its
    `Lines:` summary compared with ferroban's on the same subset (`same`);
  * fail2ban-rs 1.5.4 `dry-run` with its built-in jail of the same name (`gen-config NAME`),
    when it has one; its own regexes, so its counts are not comparable.

Each run is bounded (60 s). Prints a Markdown table sorted by ferroban's lines/s (slowest first)
and writes bench/out/filters/results.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None, timeout=60):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        return None, "timeout"
    dt = time.monotonic() - t0
    if p.returncode != 0:
        return None, (p.stderr or p.stdout).strip().splitlines()[-1:] or ["exit %d" % p.returncode]
    return dt, p.stdout


def summary(out):
    m = re.search(r"^Lines: .*$", out or "", re.M)
    return m.group(0) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "target/release/ferroban"))
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--f2b-lines", type=int, default=5000)
    ap.add_argument("--peer", default=os.path.join(REPO, "bench/out/peer/root/bin/fail2ban-rs"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-f2b", action="store_true")
    a = ap.parse_args()
    root = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
    etc = os.path.join(root, "etc/fail2ban")
    samples = os.path.join(root, "usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
    py = os.environ.get("FERROBAN_F2B_PYTHON", "/usr/bin/python3")
    f2b_env = dict(os.environ, PYTHONPATH=os.path.join(root, "usr/lib/python3/dist-packages"))
    f2b = [py, os.path.join(root, "usr/bin/fail2ban-regex")]
    out_dir = os.path.join(REPO, "bench/out/filters")
    os.makedirs(out_dir, exist_ok=True)
    peer_names = set()
    if os.access(a.peer, os.X_OK):
        dt, out = run([a.peer, "list-filters"])
        if dt is not None:
            peer_names = {l.split()[0] for l in out.splitlines() if l.strip()}
    names = sorted(
        n[:-5] for n in os.listdir(os.path.join(etc, "filter.d"))
        if n.endswith(".conf") and os.path.isfile(os.path.join(samples, n[:-5]))
    )
    if a.only:
        names = [n for n in names if n in a.only]
    rows = []
    for name in names:
        src = [l for l in open(os.path.join(samples, name), errors="replace").read().splitlines()
               if l.strip() and not l.startswith("#")]
        if not src:
            continue
        log = os.path.join(out_dir, name + ".log")
        sub = os.path.join(out_dir, name + ".sub.log")
        reps = -(-a.lines // len(src))
        with open(log, "w") as f:
            for _ in range(reps):
                f.write("\n".join(src) + "\n")
        n_lines = reps * len(src)
        with open(sub, "w") as f:
            f.write("\n".join((src * (-(-a.f2b_lines // len(src))))[: a.f2b_lines]) + "\n")
        row = {"filter": name, "lines": n_lines}
        dt, out = run([a.bin, "regex", "-r", "-c", etc, log, name])
        row["ferroban_s"] = dt
        row["ferroban_lps"] = n_lines / dt if dt else None
        row["ferroban_summary"] = summary(out) if dt else str(out)
        if not a.no_f2b:
            dt2, out2 = run(f2b + ["-r", "-c", etc, sub, name], env=f2b_env)
            row["f2b_lps"] = a.f2b_lines / dt2 if dt2 else None
            row["f2b_summary"] = summary(out2) if dt2 else str(out2)
            dt3, out3 = run([a.bin, "regex", "-r", "-c", etc, sub, name])
            row["same"] = dt2 is not None and dt3 is not None and summary(out2) == summary(out3)
        if name in peer_names:
            cfg = os.path.join(out_dir, name + ".peer.toml")
            dt4, gen = run([a.peer, "gen-config", name])
            if dt4 is not None:
                with open(cfg, "w") as f:
                    f.write("[global]\n\n" + gen)
                dt5, out5 = run([a.peer, "-c", cfg, "dry-run", log])
                row["peer_lps"] = n_lines / dt5 if dt5 else None
        rows.append(row)
        print(f"bench: {name}: {row.get('ferroban_lps') or 0:,.0f} lines/s", file=sys.stderr)
    rows.sort(key=lambda r: r.get("ferroban_lps") or 0)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    fmt = lambda v: f"{v:,.0f}" if v else "-"
    print("| filter | lines | ferroban lines/s | fail2ban-regex lines/s | ratio | same `Lines:` as fail2ban-regex | fail2ban-rs lines/s |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        ratio = (r["ferroban_lps"] / r["f2b_lps"]) if r.get("ferroban_lps") and r.get("f2b_lps") else None
        same = {True: "yes", False: "NO", None: "-"}[r.get("same")]
        print(f"| {r['filter']} | {r['lines']:,} | {fmt(r.get('ferroban_lps'))} | {fmt(r.get('f2b_lps'))} | "
              f"{f'{ratio:.0f}x' if ratio else '-'} | {same} | {fmt(r.get('peer_lps'))} |")
    print(f"\nload average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
