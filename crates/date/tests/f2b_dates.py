"""Differential oracle: runs fail2ban's own date detector.

Reads JSON jobs on stdin: [{"pattern": str|null, "now": float, "lines": [str, ...]}, ...]
and writes, for each job, either {"error": str} or
{"hits": [null | [start, end, time|null], ...]} (character offsets of the
date group, unix time) to stdout. fail2ban comes from $FERROBAN_F2B_ROOT.
The clock is fail2ban's test clock (TZ CET/CEST, now = 1124013600).
"""
import json
import os
import sys
import time

os.environ["TZ"] = "CET-01CEST-02,M3.5.0,M10.5.0"
time.tzset()

root = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
sys.path.insert(0, os.path.join(root, "usr/lib/python3/dist-packages"))

import logging  # noqa: E402

logging.disable(logging.CRITICAL)

from fail2ban.server.datedetector import DateDetector  # noqa: E402
from fail2ban.server.mytime import MyTime  # noqa: E402

MyTime.setTime(1124013600)


def detector(pattern):
    dd = DateDetector()
    if pattern is None:
        dd.addDefaultTemplate()
    else:
        for p in filter(bool, (s.strip() for s in pattern.split("\n"))):
            dd.appendTemplate(p)
    # template search counters are shared between detectors: start afresh
    for t in dd.templates:
        t.template.hits = 0
    return dd


def run(job):
    MyTime.setTime(job.get("now", 1124013600))
    try:
        dd = detector(job["pattern"])
    except Exception as e:  # invalid pattern
        return {"error": "%s: %s" % (type(e).__name__, e)}
    hits = []
    for line in job["lines"]:
        try:
            m, tpl = dd.matchTime(line)
        except IndexError:
            # fail2ban indexes past the end after an empty match at the end
            # of the line (e.g. {NONE} on an empty line): no result to compare
            hits.append("raised")
            continue
        if m is None:
            hits.append(None)
            continue
        s, e = m.start(1), m.end(1)
        t = None
        if s >= 0 and e > s:
            try:
                r = dd.getTime(line[s:e], (m, tpl))
                t = r[0] if r is not None else None
            except Exception:
                t = None
        hits.append([s, e, t])
    return {"hits": hits}


jobs = json.load(sys.stdin)
json.dump([run(j) for j in jobs], sys.stdout)
