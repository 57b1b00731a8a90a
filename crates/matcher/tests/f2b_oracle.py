#!/usr/bin/env python3
"""Oracle for ferroban-matcher's differential test.

Uses the fail2ban installation found under $FERROBAN_F2B_ROOT (imported, never
copied) to:

1. resolve every filter of etc/fail2ban/filter.d and tests/config/filter.d with
   fail2ban's own FilterReader, once with default options and once per
   `filterOptions` combination found in the sample logs (mode=..., logtype=journal...);
2. build each prefregex / failregex / ignoreregex with fail2ban's Regex class
   (failregex multi-line when maxlines > 1), with usedns "warn" and "no";
3. run Python's re.search on haystacks made from the sample log lines
   (line + "\n"; for multi-line filters also windows of 2 and 3 lines; for
   filters with a prefregex also the captured `content` + "\n").

Writes JSON to stdout: {"regexes": [...], "searches": [...]}. Spans are UTF-8
byte offsets.
"""

import glob
import shutil
import tempfile
import json
import os
import re
import sys

ROOT = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
PKG = os.path.join(ROOT, "usr/lib/python3/dist-packages")
sys.path.insert(0, PKG)

from fail2ban.client.filterreader import FilterReader  # noqa: E402
from fail2ban.server.failregex import Regex, RegexException  # noqa: E402

CONF = os.path.join(ROOT, "etc/fail2ban")
TESTS = os.path.join(PKG, "fail2ban/tests")
LOGS = os.path.join(TESTS, "files/logs")
TEST_CONF = os.path.join(TESTS, "config")

OPT_RE = re.compile(r"^#+ ?(fileOptions|filterOptions|addFILE):(.+)$")


def sample_info(name):
    """Lines (non-comment) and option dicts of the sample log `name`."""
    lines, options, files, seen = [], [], [name], set()
    common = {}
    while files:
        fname = files.pop(0)
        if fname in seen:
            continue
        seen.add(fname)
        path = os.path.join(LOGS, fname)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                line = raw.rstrip("\r\n")
                m = OPT_RE.match(line)
                if m:
                    try:
                        data = json.loads(m.group(2))
                    except ValueError:
                        continue
                    if m.group(1) == "fileOptions":
                        common = data
                    elif m.group(1) == "filterOptions":
                        for d in data if isinstance(data, list) else [data]:
                            o = dict(common)
                            o.update(d)
                            options.append({k: v for k, v in o.items() if not k.startswith("test.")})
                    else:
                        files.append(data)
                    continue
                if line.startswith("#"):
                    continue
                lines.append(line)
    return lines, options


def read_filter(name, basedir, opts):
    fr = FilterReader(name, "jail", dict(opts), basedir=basedir)
    fr.read()
    fr.getOptions({})
    out = {"prefregex": [], "failregex": [], "ignoreregex": [], "maxlines": 1}
    for opt in fr.convert():
        vals = opt[3] if opt[0] == "multi-set" else [opt[3]]
        for v in vals:
            if opt[2] == "prefregex":
                out["prefregex"].append(v)
            elif opt[2] == "addfailregex":
                out["failregex"].append(v)
            elif opt[2] == "addignoreregex":
                out["ignoreregex"].append(v)
            elif opt[2] == "maxlines":
                out["maxlines"] = int(v)
    return out


def byte_span(s, a, b):
    pre = len(s[:a].encode("utf-8"))
    return [pre, pre + len(s[a:b].encode("utf-8"))]


def group_value(v):
    if isinstance(v, tuple):
        return list(v)
    return v


SYNTH_PATTERNS = [
    r"\w+", r"\W+", r"\d+", r"\D+", r"\s+", r"\S+", r"\bx\b", r"\Bx", r"x\B", r"\b", r"\B",
    r"[\w.]+", r"[^\w.]+", r"[\W\d]+", r"[^\W\d]+", r"[\S]+", r"[^\S ]+", r"[\D]", r"[^\s\d]",
    r"(?i)stra\w+e", r"(?i)[a-z]+", r"(?i)k", r"(?i)s+", r"(?i)i", r"(?i)[h-j]", r"(?i)\xe9",
    r"(?a)\w+", r"(?a)\b\w", r"(?a)\s", r"(?a)\d",
    r"x{,2}", r"x{2,}", r"a{", r"a{1", r"a{,}", r"a{}", r"}x", r"[[]+", r"\<\>", r"(?iu)ab",
    r"((?i)ab)c", r"(?:(?i)ab)c", r"^$", r"^", r"$", r"(?m)^$", r"(?m)^.*$", r"a$", r"a\Z", r"\Aa",
    r"(?s).+", r".+", r"(?P<a>x)?(?(a)y|z)", r"(x)?(?(1)y|z)", r"(?P<a>\w)(?P=a)", r"(\w)\1",
    r"(?i)(\w)\1", r"(?<=a)b", r"(?<!a)b", r"a(?=b)", r"a(?!b)", r"(?>a+)b", r"a++b", r"a*?b",
    r"(a|ab)(c|bcd)(d*)", r"(a*)*b", r"(a*)+b", r"(a|b)*?c", r"\x41\u00e9\U0001F600", r"\101\0",
    r"[\x00-\x1f]+", r"(?x) a b # comment\n c", r"\n", r"a$\n^b", r"(?m)a$\n^b", r"[\b]", r"[-a]+",
    r"[a-]+", r"[]a]+", r"[^]a]+", r"\t\v\f", r"(?P<alt_user_1>a)|(?P<alt_user_2>b)", r"(?P<tuple_id_1>a)(?P<tuple_id>b)?",
    r".\n.", r"(?s).\n", r"\s*$", r"^\s*", r"(?:.*\n)*?b", r"\S+$",
]
SYNTH_HAYS = [
    "", "x", "ax", "xa", "\xe9", "e\u0301x", "x\u0301", "\xb2", "\u0663", "\u2167", "\xa0", "\x1c",
    "\x85", "\u180e", "\u200b", "\u203f", "\u0130", "\u0131", "K", "\u212a", "\u017f", "STRASSE",
    "stra\xdfe", "Stra\xdfe", "ab\nb", "a\n", "\n", "a\n\n", "xy", "xz", "yy", "aab", "abcd",
    "aaab", "{", "a{", "a{1", "}x", "[[", "<>", "AB c", "Abc", "a b c", "\t\x0b\x0c", "\x08", "-",
    "]", "\U0001F600", "A\xe9\U0001F600", "A\x00", "x{,2}", "xxx", "ABC", "\xc9", "\u0130x", "ab\n b",
    "b\na\nb", " a ", "\u3000x\u3000",
]


def main():
    regexes = []  # dicts
    index = {}  # (pattern, multiline, usedns) -> id
    searches = []
    seen_search = set()

    def regex_id(pattern, multiline, usedns):
        key = (pattern, multiline, usedns)
        if key in index:
            return index[key]
        entry = {"pattern": pattern, "multiline": multiline, "usedns": usedns}
        try:
            r = Regex(pattern, multiline=multiline, useDns=usedns)
            entry["expanded"] = r.getRegex()
            entry["ok"] = True
        except RegexException as e:
            r = None
            entry["ok"] = False
            entry["error"] = str(e)
        index[key] = len(regexes)
        regexes.append(entry)
        entry["_obj"] = r
        return index[key]

    def search(rid, hay):
        key = (rid, hay)
        if key in seen_search:
            return None
        seen_search.add(key)
        r = regexes[rid]["_obj"]
        if r is None:
            return None
        r.search(hay, [hay])
        m = r._matchCache
        rec = {"r": rid, "h": hay, "m": None}
        if m is not None:
            groups = {}
            for k in m.re.groupindex:
                a, b = m.span(k)
                groups[k] = None if a < 0 else byte_span(hay, a, b)
            rec["m"] = {
                "span": byte_span(hay, *m.span()),
                "groups": groups,
                "f2b": {k: group_value(v) for k, v in r.getGroups().items()},
            }
        searches.append(rec)
        return m

    # The test filters include stock ones (common.conf): read both from one merged tree.
    merged = tempfile.mkdtemp(prefix="ferroban-oracle-")
    os.mkdir(os.path.join(merged, "filter.d"))
    for d in (os.path.join(CONF, "filter.d"), os.path.join(TEST_CONF, "filter.d")):
        for f in os.listdir(d):
            dst = os.path.join(merged, "filter.d", f)
            if not os.path.exists(dst):
                os.symlink(os.path.join(d, f), dst)
    filter_dirs = [(os.path.join(CONF, "filter.d"), CONF), (os.path.join(TEST_CONF, "filter.d"), merged)]
    for fdir, basedir in filter_dirs:
        for path in sorted(glob.glob(os.path.join(fdir, "*.conf"))):
            name = os.path.basename(path)[:-5]
            lines, options = sample_info(name)
            variants = [{}] + [o for i, o in enumerate(options) if o and o not in options[:i]]
            for opts in variants:
                try:
                    conf = read_filter(name, basedir, opts)
                except Exception as e:  # noqa: BLE001 - a broken filter is reported, not fatal
                    print("skip filter %s %r: %s" % (name, opts, e), file=sys.stderr)
                    continue
                ml = conf["maxlines"] > 1
                for usedns in ("warn", "no"):
                    pref = [regex_id(p, False, usedns) for p in conf["prefregex"]]
                    fail = [regex_id(p, ml, usedns) for p in conf["failregex"]]
                    ign = [regex_id(p, False, usedns) for p in conf["ignoreregex"]]
                    hays = [l + "\n" for l in lines]
                    if ml:
                        for w in (2, 3):
                            hays += ["\n".join(lines[i:i + w]) + "\n" for i in range(len(lines) - w + 1)]
                    contents = []
                    for h in hays:
                        for rid in pref:
                            m = search(rid, h)
                            if m is not None and "content" in m.re.groupindex and m.group("content") is not None:
                                contents.append(m.group("content") + "\n")
                        for rid in fail + ign:
                            search(rid, h)
                    for h in contents:
                        for rid in fail + ign:
                            search(rid, h)
    shutil.rmtree(merged, ignore_errors=True)
    # Synthetic cases: each translation rule against Unicode and edge haystacks.
    for multiline in (False, True):
        rids = [regex_id(p, multiline, "warn") for p in SYNTH_PATTERNS]
        for h in SYNTH_HAYS:
            for hay in (h, h + "\n"):
                for rid in rids:
                    search(rid, hay)
    for e in regexes:
        del e["_obj"]
    json.dump({"regexes": regexes, "searches": searches}, sys.stdout)


if __name__ == "__main__":
    main()
