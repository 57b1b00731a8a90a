#!/usr/bin/python3
"""Draws the benchmark figures into docs/ from the raw JSON the bench scripts write.

    /usr/bin/python3 bench/plots.py [--daemon bench/out/daemon] [--metrics bench/out/metrics]
                                    [--docs docs]

- docs/ban-latency.png: distribution of the ban latency (line appended -> ban action ran),
  ferroban vs fail2ban, from bench/daemon.sh's samples (bench/out/daemon/{fail2ban,ferroban}.json).
- docs/ingest-rate.png: a 1,000,000-line ingest while /metrics is scraped every 100 ms (lines read
  over time and the rate between scrapes), and the ingest times with and without the scraper,
  from bench/metrics-scrape.py (bench/out/metrics/scrape.json).
- docs/rss-flood.png: ferroban's resident memory over that flood (process_resident_memory_bytes of
  the same scrapes).

Needs matplotlib (Debian: python3-matplotlib). A figure whose input is missing is skipped with a
message; the exit status is 1 if none could be drawn.
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"plots: {path}: {e}", file=sys.stderr)
        return None


def latency(daemon_dir, out):
    series = {}
    for name in ("fail2ban", "ferroban"):
        d = load(os.path.join(daemon_dir, f"{name}.json"))
        if not d or d.get("error"):
            continue
        for key, label in (("latency_nginx404", "nginx-404"), ("latency_sshd", "sshd")):
            s = (d.get(key) or {}).get("samples_ms")
            if s:
                series[(name, label)] = sorted(s)
    if not series:
        print("plots: no latency samples (run bench/daemon.sh first)", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colours = {"fail2ban": "tab:red", "ferroban": "tab:blue"}
    styles = {"nginx-404": "-", "sshd": "--"}
    for (name, label), s in sorted(series.items()):
        n = len(s)
        ax.step(s, [(i + 1) / n for i in range(n)], where="post", color=colours[name],
                linestyle=styles[label], label=f"{name} {label} (median {s[n // 2]:.1f} ms, n={n})")
    ax.set_xscale("log")
    ax.set_xlabel("ban latency: line appended → ban action ran (ms, log scale)")
    ax.set_ylabel("fraction of bans")
    ax.set_title("Ban latency distribution, ferroban vs fail2ban 1.0.2 (bench/daemon.sh)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ban-latency.png"))
    plt.close(fig)
    return True


def ingest(metrics_dir, out):
    d = load(os.path.join(metrics_dir, "scrape.json"))
    if not d:
        print("plots: no scrape.json (run bench/metrics-scrape.py first)", file=sys.stderr)
        return False, False
    scraped = [r for r in d["runs"] if r["scrape"] and r.get("samples")]
    plain = [r["seconds"] for r in d["runs"] if not r["scrape"]]
    with_s = [r["seconds"] for r in d["runs"] if r["scrape"]]
    ok_ingest = ok_rss = False
    if scraped:
        run = scraped[len(scraped) // 2]
        t = [s[0] for s in run["samples"] if s[1] is not None]
        read = [s[1] for s in run["samples"] if s[1] is not None]
        rate = [0.0] + [(read[i] - read[i - 1]) / max(t[i] - t[i - 1], 1e-6) for i in range(1, len(t))]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110,
                                     gridspec_kw={"width_ratios": [2.2, 1]})
        a1.plot(t, [r / 1e3 for r in read], color="tab:blue", label="lines read (thousands)")
        a1.set_xlabel("seconds since the 1,000,000 lines were appended")
        a1.set_ylabel("lines read (thousands)", color="tab:blue")
        a1b = a1.twinx()
        a1b.plot(t, [r / 1e3 for r in rate], color="tab:green", alpha=0.6, linewidth=0.8)
        a1b.set_ylabel("rate between scrapes (thousand lines/s)", color="tab:green")
        a1.set_title(f"Ingest while scraped every {d['interval_s'] * 1000:.0f} ms "
                     f"({run['scrapes']} scrapes)")
        a1.grid(True, alpha=0.3)
        xs = list(range(1, len(plain) + 1))
        w = 0.38
        a2.bar([x - w / 2 for x in xs], plain, w, label="no scraper", color="tab:gray")
        a2.bar([x + w / 2 for x in xs], with_s, w, label="scraped / 100 ms", color="tab:blue")
        a2.set_xticks(xs, [f"pair {x}" for x in xs])
        a2.set_ylabel("ingest time (s)")
        a2.set_title(f"median change {d['change_pct']:+.1f}%")
        a2.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "ingest-rate.png"))
        plt.close(fig)
        ok_ingest = True
        rss = [(s[0], s[2]) for s in run["samples"] if s[2] is not None]
        if rss:
            fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
            ax.plot([x[0] for x in rss], [x[1] / 2**20 for x in rss], color="tab:purple")
            ax.set_xlabel("seconds since the 1,000,000 lines were appended")
            ax.set_ylabel("resident memory (MiB)")
            ax.set_ylim(bottom=0)
            ax.set_title("ferroban's RSS over a 1,000,000-line flood (process_resident_memory_bytes)")
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            fig.savefig(os.path.join(out, "rss-flood.png"))
            plt.close(fig)
            ok_rss = True
    return ok_ingest, ok_rss


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", default="bench/out/daemon")
    p.add_argument("--metrics", default="bench/out/metrics")
    p.add_argument("--docs", default="docs")
    a = p.parse_args()
    os.makedirs(a.docs, exist_ok=True)
    done = [latency(a.daemon, a.docs), *ingest(a.metrics, a.docs)]
    for ok, name in zip(done, ("ban-latency.png", "ingest-rate.png", "rss-flood.png")):
        print(f"plots: {os.path.join(a.docs, name)}: {'written' if ok else 'skipped'}", file=sys.stderr)
    sys.exit(0 if any(done) else 1)


if __name__ == "__main__":
    main()
