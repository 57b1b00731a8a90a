"""Test helper for ferroban-config's differential tests.

Imports fail2ban from the reference tree (PYTHONPATH) and prints, in a simple line format, what
fail2ban's own readers resolve. Written for ferroban; only fail2ban's public reader classes are used.

Usage:
  f2b_dump.py filters <f2b_root>      every filter (and option set used by the sample logs)
  f2b_dump.py actions <config_dir>    every action.d/*.conf for jail "TEST"
  f2b_dump.py jails <config_dir> [force|noforce]
                                      every (enabled, or all when forced) jail

Format: records "BEGIN" ... "END"; inside, "key<TAB>value" lines with \\, \n, \t, \r escaped.
"""
import glob
import json
import os
import sys


def esc(v):
    return (str(v).replace("\\", "\\\\").replace("\n", "\\n")
            .replace("\t", "\\t").replace("\r", "\\r"))


def out(key, *vals):
    sys.stdout.write(key + "".join("\t" + esc(v) for v in vals) + "\n")


def filter_cases(root):
    pkg = os.path.join(root, "usr/lib/python3/dist-packages/fail2ban")
    etc = os.path.join(root, "etc/fail2ban")
    cases = []
    for basedir in (etc, os.path.join(pkg, "tests/config")):
        names = sorted(os.path.splitext(os.path.basename(f))[0]
                       for f in glob.glob(os.path.join(basedir, "filter.d", "*.conf")))
        for name in names:
            cases.append((basedir, name, {}))
            cases.append((basedir, name, {"logtype": "journal"}))
            logf = os.path.join(pkg, "tests/files/logs", name)
            if not os.path.isfile(logf):
                continue
            seen = [{}, {"logtype": "journal"}]
            with open(logf, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if "filterOptions:" not in line or not line.startswith("#"):
                        continue
                    text = line.split("filterOptions:", 1)[1].strip()
                    try:
                        o = json.loads(text)
                    except ValueError:
                        continue
                    for d in (o if isinstance(o, list) else [o]):
                        if d not in seen:
                            seen.append(d)
                            cases.append((basedir, name, d))
    return cases


def dump_filters(root):
    from fail2ban.client.filterreader import FilterReader
    for basedir, name, opts in filter_cases(root):
        out("BEGIN")
        out("basedir", basedir)
        out("name", name)
        for k, v in opts.items():
            out("opt", k, v)
        try:
            r = FilterReader(name, "jail", dict(opts), basedir=basedir)
            if not r.read():
                raise ValueError("cannot read")
            r.getOptions({})
            c = r.getCombined()
            for k in ("prefregex", "datepattern", "journalmatch", "maxlines"):
                if c.get(k) is not None:
                    out(k, c[k])
            for k in ("failregex", "ignoreregex"):
                for rx in (c.get(k) or "").split("\n"):
                    if rx != "":
                        out(k, rx)
        except Exception as e:  # reported, compared as "error"
            out("error", "%s: %s" % (type(e).__name__, e))
        out("END")


def dump_jails(basedir, force=True):
    from fail2ban.client.jailsreader import JailsReader
    from fail2ban.version import version
    out("BEGIN")
    out("version", version)
    out("END")
    r = JailsReader(force_enable=force, basedir=basedir)
    r.read()
    r.getOptions()
    for jail in r.jails:
        out("BEGIN")
        out("jail", jail.getName())
        opts = jail.options
        if opts.get("config-error"):
            out("error", opts["config-error"])
        for k in ("logpath", "backend", "bantime", "findtime", "maxretry", "action", "ignoreip"):
            if opts.get(k) is not None:
                out("opt", k, opts[k])
        for act in jail._JailReader__actions:
            if isinstance(act, list):
                out("pyaction", act[3], act[4], act[5])
                continue
            for cmd in act.convert():
                if cmd[0] == "set" and cmd[2] == "addaction":
                    out("action", cmd[3])
                elif cmd[0] == "multi-set":
                    for k, v in cmd[4]:
                        out("aopt", cmd[3], k, v)
                elif cmd[0] == "set":
                    out("aopt", cmd[3], cmd[4], cmd[5])
        flt = jail._JailReader__filter
        if flt is not None:
            c = flt.getCombined()
            for k in ("failregex", "ignoreregex"):
                v = opts.get(k) if opts.get(k) is not None else c.get(k)
                for rx in (v or "").split("\n"):
                    if rx != "":
                        out(k, rx)
        out("END")


def dump_actions(basedir):
    from fail2ban.client.actionreader import ActionReader
    for f in sorted(glob.glob(os.path.join(basedir, "action.d", "*.conf"))):
        name = os.path.splitext(os.path.basename(f))[0]
        for opts in ({}, {"name": "other", "port": "ssh", "protocol": "udp"}):
            out("BEGIN")
            out("name", name)
            for k, v in opts.items():
                out("opt", k, v)
            try:
                r = ActionReader(name, "TEST", dict(opts), basedir=basedir)
                if not r.read():
                    raise ValueError("cannot read")
                r.getOptions({})
                for cmd in r.convert():
                    if cmd[0] == "set" and cmd[2] == "addaction":
                        out("action", cmd[3])
                    elif cmd[0] == "multi-set":
                        for k, v in cmd[4]:
                            if v is not None:  # None: option not set (no [Definition])
                                out("aopt", k, v)
                    elif cmd[0] == "set":
                        out("aopt", cmd[4], cmd[5])
            except Exception as e:
                out("error", "%s: %s" % (type(e).__name__, e))
            out("END")


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "filters":
        dump_filters(path)
    elif mode == "actions":
        dump_actions(path)
    elif mode == "jails":
        dump_jails(path, len(sys.argv) < 4 or sys.argv[3] == "force")
    else:
        sys.exit("unknown mode " + mode)
