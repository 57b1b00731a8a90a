#!/usr/bin/env python3
"""Table and verdict for bench/regex.sh.

    bench/report.py RESULTS.tsv FACTS.txt REPORT.md

RESULTS.tsv has one row per run: tool, case, status, seconds, rss_kb, summary.
Prints the table (plain text) to stdout, writes the same as Markdown to
REPORT.md, and exits 1 if a run failed or the two tools' `Lines:` summaries
differ for a case (also when a speed target is missed and
BENCH_ENFORCE_TARGETS=1).
"""

import csv
import os
import sys

TARGETS = {"botsearch": 30.0, "guide": 200.0}
CASE_TITLES = {
    "botsearch": "nginx-botsearch (Debian filter)",
    "guide": "guide failregex",
}


def main():
    results_path, facts_path, report_path = sys.argv[1:4]
    with open(results_path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(facts_path) as f:
        facts = [line.rstrip("\n") for line in f if line.strip()]

    by = {(r["tool"], r["case"]): r for r in rows}
    cases = list(dict.fromkeys(r["case"] for r in rows))
    problems = []
    verdicts = []

    table = []
    for case in cases:
        f2b = by.get(("fail2ban", case))
        fb = by.get(("ferroban", case))
        ratio = None
        if (f2b and fb and f2b["status"] == "ok" and fb["status"] == "ok"
                and f2b["summary"] and fb["summary"]):
            t_f2b, t_fb = float(f2b["seconds"]), float(fb["seconds"])
            ratio = t_f2b / t_fb if t_fb > 0 else float("inf")
        for r in (f2b, fb):
            if r is None:
                continue
            rss = "%.1f" % (int(r["rss_kb"]) / 1024) if r["rss_kb"] else "?"
            secs = r["seconds"] if r["status"] == "ok" else "%s (%s)" % (r["seconds"], r["status"])
            if r["tool"] == "ferroban":
                rat = "%.1fx" % ratio if ratio is not None else "-"
            else:
                rat = "1x"
            table.append([r["tool"], case, secs, rss, r["summary"] or "(none)", rat])
            if r["status"] != "ok":
                problems.append("%s on %s: %s" % (r["tool"], case, r["status"]))
            elif not r["summary"]:
                problems.append("%s on %s printed no 'Lines:' summary" % (r["tool"], case))
        if f2b and fb and f2b["summary"] and fb["summary"]:
            same = f2b["summary"] == fb["summary"]
            if not same:
                problems.append("%s: summaries differ\n  fail2ban: %s\n  ferroban: %s"
                                % (case, f2b["summary"], fb["summary"]))
            target = TARGETS.get(case)
            if ratio is not None and target is not None:
                met = ratio >= target
                verdicts.append("%s: same Lines summary: %s; speed-up %.1fx, target >= %gx: %s"
                                % (case, "yes" if same else "NO", ratio, target,
                                   "met" if met else "NOT met"))
                if not met and os.environ.get("BENCH_ENFORCE_TARGETS") == "1":
                    problems.append("%s: speed-up %.1fx below target %gx" % (case, ratio, target))

    head = ["tool", "case", "seconds", "peak RSS MB", "Lines summary", "speed-up"]
    widths = [max(len(str(x[i])) for x in table + [head]) for i in range(len(head))]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = []
    out.extend(facts)
    out.append("")
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in table)
    out.append("")
    out.extend(verdicts)
    for p in problems:
        out.append("PROBLEM: " + p)
    out.append("RESULT: " + ("FAIL" if problems else "OK"))
    print("\n".join(out))

    md = ["| tool | case | seconds | peak RSS MB | `Lines:` summary | speed-up |",
          "| --- | --- | ---: | ---: | --- | ---: |"]
    for r in table:
        md.append("| %s | %s | %s | %s | `%s` | %s |"
                  % (r[0], CASE_TITLES.get(r[1], r[1]), r[2], r[3], r[4], r[5]))
    with open(report_path, "w") as f:
        f.write("\n".join("- " + x for x in facts) + "\n\n" + "\n".join(md) + "\n")
        if verdicts:
            f.write("\n" + "\n".join("- " + v for v in verdicts) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
