#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/fuzz_targets/*.rs), built at run time from the
fail2ban reference under $FERROBAN_F2B_ROOT (its configuration, sample logs and test files).
fail2ban is GPL: these seeds are written to fuzz/corpus/ (git-ignored), never committed.

    scripts/fuzz-seeds.py OUTDIR        # writes OUTDIR/<target>/seed-*

Each seed follows its target's input layout (NUL-separated parts, see the target's doc).
"""

import glob
import hashlib
import os
import re
import sys

ROOT = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
PKG = os.path.join(ROOT, "usr/lib/python3/dist-packages")
CONF = os.path.join(ROOT, "etc/fail2ban")
LOGS = os.path.join(PKG, "fail2ban/tests/files/logs")
TESTFILES = os.path.join(PKG, "fail2ban/tests/files")

MAX_SEED = 48 * 1024  # keep seeds small: the fuzzer grows what it needs


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def sample_lines(name, limit=40):
    out = []
    for l in read(os.path.join(LOGS, name)).split(b"\n"):
        if l.startswith(b"#") or not l.strip():
            continue
        out.append(l)
        if len(out) >= limit:
            break
    return out


def write(outdir, target, data):
    data = data[:MAX_SEED]
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def failregexes(text):
    """failregex/prefregex/ignoreregex values (continuation lines joined as separate regexes),
    interpolations left as written: seeds only need to look like the real thing."""
    out = []
    key = None
    for raw in text.decode("utf-8", "replace").split("\n"):
        m = re.match(r"^(failregex|prefregex|ignoreregex)\s*=\s*(.*)$", raw)
        if m:
            key = m.group(1)
            if m.group(2).strip():
                out.append(m.group(2).strip())
            continue
        if key and raw[:1] in (" ", "\t") and raw.strip():
            out.append(raw.strip())
            continue
        key = None
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fuzz-seeds.py OUTDIR")
    outdir = sys.argv[1]
    if not os.path.isfile(os.path.join(CONF, "jail.conf")):
        sys.exit("fuzz-seeds: no fail2ban reference at %s (run scripts/f2b-env.sh)" % ROOT)
    filters = sorted(glob.glob(os.path.join(CONF, "filter.d/*.conf")))
    actions = sorted(glob.glob(os.path.join(CONF, "action.d/*.conf")))
    common = read(os.path.join(CONF, "filter.d/common.conf"))
    jail = read(os.path.join(CONF, "jail.conf"))
    paths = read(os.path.join(CONF, "paths-debian.conf")) or read(os.path.join(CONF, "paths-common.conf"))
    f2bconf = read(os.path.join(CONF, "fail2ban.conf"))
    logs = sorted(glob.glob(os.path.join(LOGS, "*")))
    n = 0

    # ini: jail.conf, jail.local, filter.d/f.conf, filter.d/f.local, action.d/a.conf,
    #      paths-common.conf, jail.d/x.conf, fail2ban.conf, filter.d/common.conf
    for i, f in enumerate(filters):
        a = actions[i % len(actions)] if actions else ""
        local = b"[sshd]\nenabled = true\nfilter = f\naction = a[name=%(__name__)s]\n"
        parts = [jail if i % 8 == 0 else local, local, read(f), b"", read(a), paths, b"", f2bconf, common]
        write(outdir, "ini", b"\0".join(parts))
        n += 1

    # filter: the filter file, NUL, filter.d/common.conf, NUL, its sample log's lines
    for f in filters:
        name = os.path.basename(f)[:-5]
        lines = sample_lines(name)
        if lines:
            write(outdir, "filter", read(f) + b"\0" + common + b"\0" + b"\n".join(lines))
            n += 1

    # matcher: flags, pattern, NUL, lines
    for f in filters:
        name = os.path.basename(f)[:-5]
        lines = sample_lines(name, 12)
        for j, rx in enumerate(failregexes(read(f))[:6]):
            write(outdir, "matcher", bytes([j % 4]) + rx.encode() + b"\0" + b"\n".join(lines))
            n += 1

    # date_detect: sample lines
    for l in logs:
        lines = sample_lines(os.path.basename(l), 30)
        if lines:
            write(outdir, "date_detect", b"\n".join(lines))
            n += 1

    # datepattern: datepattern, NUL, logtimezone, NUL, lines
    for f in filters:
        name = os.path.basename(f)[:-5]
        m = re.search(rb"^datepattern\s*=\s*(.+)$", read(f), re.M)
        if m:
            lines = sample_lines(name, 12)
            write(outdir, "datepattern", m.group(1).strip() + b"\0\0" + b"\n".join(lines))
            write(outdir, "datepattern", m.group(1).strip() + b"\0UTC+0200\0" + b"\n".join(lines))
            n += 2
    for pat in (b"{^LN-BEG}%ExY-%Exm-%Exd %ExH:%ExM:%ExS", b"Epoch", b"TAI64N", b"ISO8601",
                b"%d/%b/%Y:%H:%M:%S %z", b"^%b %d %H:%M:%S", b"{NONE}", b"%s"):
        write(outdir, "datepattern", pat + b"\0\0" + b"\n".join(sample_lines("sshd", 10)))
        n += 1

    # journal_export: a chunk-size byte, then export-format entries built from sample lines
    entries = []
    for k, l in enumerate(sample_lines("sshd", 20)):
        e = b"__CURSOR=s=abc;i=%x\n__REALTIME_TIMESTAMP=%d\n_HOSTNAME=host\nSYSLOG_IDENTIFIER=sshd\n_PID=%d\n" % (
            k, 1700000000000000 + k * 1000000, 100 + k)
        entries.append(e + b"MESSAGE=" + l.split(b": ", 1)[-1] + b"\n\n")
    binary = b"MESSAGE\n" + (11).to_bytes(8, "little") + b"bin\nary\0val\n\n"
    write(outdir, "journal_export", b"\x07" + b"".join(entries))
    write(outdir, "journal_export", b"\x01" + b"".join(entries[:3]) + b"__REALTIME_TIMESTAMP=1\n" + binary)
    n += 2

    # control: request and response lines
    for line in (b'{"v":1,"argv":["status"]}', b'{"v":1,"argv":["status","sshd"]}',
                 b'{"v":1,"argv":["set","sshd","banip","192.0.2.1"]}',
                 b'{"v":1,"ok":[["Number of jail",1],["Jail list","sshd"]]}',
                 b'{"v":1,"ok":[["Filter",[["Currently failed",0],["Total failed",0],["File list",["/var/log/auth.log"]]]],'
                 b'["Actions",[["Currently banned",1],["Total banned",1],["Banned IP list",["192.0.2.1"]]]]]}',
                 b'{"v":1,"error":"Sorry but the jail \'x\' does not exist"}',
                 b'{"v":1,"ok":[{"sshd":["192.0.2.1"]}]}', b'{"v":1,"ok":1.5e300}'):
        write(outdir, "control", line + b"\n")
        n += 1

    # pickle: fail2ban-client's frames (pickle of the command words + <F2B_END_COMMAND>) in
    # every pickle protocol, and a server's replies
    import pickle
    end = b"<F2B_END_COMMAND>"
    for cmd in (["ping"], ["status"], ["status", "sshd"], ["set", "sshd", "banip", "192.0.2.1"],
                ["get", "sshd", "bantime"], ["stop"]):
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            write(outdir, "pickle", pickle.dumps(cmd, proto) + end)
            n += 1
    write(outdir, "pickle", b"<F2B_CLOSE_COMMAND>" + end)
    for reply in ((0, [("Number of jail", 1), ("Jail list", "sshd")]), (0, {"sshd": ["192.0.2.1"]}),
                  (1, ValueError("x")), (0, 1.5), (0, None), (0, (True, b"b", set([1])))):
        write(outdir, "pickle", pickle.dumps(reply, 2) + end)
        n += 1

    # action_tags: properties, NUL, command, NUL, run-time values
    for a in actions:
        text = read(a).decode("utf-8", "replace")
        props, cmd, key = [], None, None
        for raw in text.split("\n"):
            m = re.match(r"^([A-Za-z_][\w?=-]*)\s*=\s*(.*)$", raw)
            if m:
                key = m.group(1)
                props.append("%s = %s" % (key, m.group(2)))
                if key == "actionban":
                    cmd = m.group(2)
            elif key and raw[:1] in (" ", "\t") and raw.strip():
                props[-1] += " " + raw.strip()
                if key == "actionban" and cmd is not None:
                    cmd += "\n" + raw.strip()
        if cmd:
            values = "192.0.2.1\nline one; rm -rf / `id` $(id)\nroot'\"\n\n2001:db8::1"
            write(outdir, "action_tags", "\n".join(props).encode() + b"\0" + cmd.encode() + b"\0" + values.encode())
            n += 1

    # duration_addr: durations and addresses from jail.conf plus edge cases
    words = re.findall(rb"=\s*([^\n]+)", jail)[:200]
    words += [b"1d12h", b"-1", b"1.5w", b"10m 5s", b"3600", b"1y", b"192.0.2.0/24", b"[2001:db8::1]",
              b"10.0.0.0/255.255.0.0", b"::ffff:192.0.2.1", b"2001:db8::/33", b"localhost", b"fe80::1%eth0"]
    write(outdir, "duration_addr", b"\n".join(words))
    n += 1
    print("fuzz-seeds: %d seeds from %s" % (n, ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
