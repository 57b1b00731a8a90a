#!/usr/bin/env python3
"""ReDoS-shaped failregexes: ferroban regex vs fail2ban-regex 1.0.2 over growing line lengths.

    python3 bench/redos.py [--mib N] [--f2b-timeout S] [--reps R] [--ferroban PATH]

Each case is a failregex of the classic catastrophic shapes (nested quantifiers, a repeated
`.*`, overlapping alternatives, a look-behind the linear gate cannot decide, a matching line
that makes a backtracker retry) and a line generator; lines are `L` bytes long (newline not
counted).

- ferroban: for each L in 1 KiB .. 64 KiB, a log of N MiB (default 8; an eighth of it for the look-behind case, whose every line costs PCRE2's whole
  backtracking budget) made of lines of length L
  (the same total bytes at every L) is matched by `ferroban regex --print-no-missed LOG REGEX`;
  the user CPU time of the process (best of R runs, getrusage of the child) is divided by the
  bytes: a flat ns/byte column is the linearity claim. The matched count is checked against the
  case's expectation (all lines or none).
- fail2ban-regex 1.0.2 (from $FERROBAN_F2B_ROOT, default /tmp/f2b/root): one line of length L per
  run, L from 16 bytes upward, each run under a timeout (default 10 s); a case stops at its first
  timeout. Its start-up (a run on a one-line log the regex rejects at once) is subtracted. Where
  fail2ban finishes, ferroban is run on the same one-line log and the matched counts compared.

CPU time, not wall time: the machine is shared (see /tmp/team/RULES.md). Takes about a minute
with the defaults. Prints a Markdown table (BENCHMARKS.md holds a run of it).
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

HOST = "192.0.2.1"

# (name, failregex, line(L) -> str of exactly L bytes, every line matches?). Python's `re` merges
# alternatives of single characters into one set, so `(\w|\d)+` does not explode there: the
# overlap case uses `(a|aa)+`, whose ways to split a run grow as the Fibonacci numbers.
CASES = [
    (
        "nested (a+)+",
        r"^<HOST> (a+)+$",
        lambda n: HOST + " " + "a" * (n - len(HOST) - 2) + "!",
        False,
    ),
    (
        "repeated .* ((.*a){12})",
        r"^<HOST> (.*a){12}$",
        lambda n: HOST + " " + "a" * (n - len(HOST) - 2) + "!",
        False,
    ),
    (
        "overlap (a|aa)+",
        r"^<HOST> (?:a|aa)+$",
        lambda n: HOST + " " + "a" * (n - len(HOST) - 2) + "!",
        False,
    ),
    (
        "look-behind (a+)+(?<!a)b",
        r"^<HOST> (a+)+(?<!a)b$",
        lambda n: HOST + " " + "a" * (n - len(HOST) - 2) + "b",
        False,
    ),
    (
        r"matching (.*\s)+from",
        r"^(?:.*\s)+from <HOST>$",
        lambda n: "x" * ((n - len(HOST) - 5) % 2) + "x " * ((n - len(HOST) - 5) // 2) + "from " + HOST,
        True,
    ),
]

FERRO_LENGTHS = [1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10]
F2B_LENGTHS = [16, 20, 24, 28, 32, 36, 40, 44, 48, 64, 128, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10]

LINES_RE = re.compile(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", re.M)


def run(cmd, timeout=None, env=None):
    """Runs cmd; returns (user CPU seconds, stdout text) or (None, None) on timeout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    try:
        out = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, None
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    return after - before, out.stdout.decode("utf-8", "replace")


def counts(text, what):
    m = LINES_RE.search(text or "")
    if not m:
        sys.exit(f"redos.py: no 'Lines:' summary from {what}:\n{(text or '')[-2000:]}")
    return int(m.group(1)), int(m.group(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=8, help="MiB of log per ferroban point")
    ap.add_argument("--f2b-timeout", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ferroban", default=None, help="binary (default target/release/ferroban)")
    args = ap.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ferroban = args.ferroban or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target")), "release", "ferroban"
    )
    if not os.access(ferroban, os.X_OK):
        sys.exit(f"redos.py: {ferroban} missing: cargo build --release -p ferroban")
    root = os.environ.get("FERROBAN_F2B_ROOT", "/tmp/f2b/root")
    f2b = os.path.join(root, "usr/bin/fail2ban-regex")
    if not os.path.exists(f2b):
        sys.exit(f"redos.py: {f2b} missing: run scripts/f2b-env.sh")
    python = os.environ.get("FERROBAN_F2B_PYTHON", "/usr/bin/python3")
    f2b_env = dict(os.environ, PYTHONPATH=os.path.join(root, "usr/lib/python3/dist-packages"))

    def f2b_run(log, regex, timeout):
        return run([python, f2b, "--print-no-missed", log, regex], timeout, f2b_env)

    tmp = tempfile.mkdtemp(prefix="ferroban-redos-")
    total = args.mib << 20
    rows = []
    try:
        # fail2ban-regex's start-up: a one-line log the regex rejects at its first byte.
        start_log = os.path.join(tmp, "start.log")
        with open(start_log, "w") as f:
            f.write("x\n")
        f2b_start = min(f2b_run(start_log, r"^<HOST> a$", 60)[0] for _ in range(2))
        ferro_start = min(run([ferroban, "regex", start_log, r"^<HOST> a$"])[0] for _ in range(3))
        print(
            f"start-up user CPU: fail2ban-regex {f2b_start * 1e3:.0f} ms (subtracted), "
            f"ferroban regex {ferro_start * 1e3:.1f} ms",
            file=sys.stderr,
        )
        for name, regex, gen, all_match in CASES:
            ferro = {}
            for length in FERRO_LENGTHS:
                line = gen(length)
                assert len(line) == length, (name, length, len(line))
                # The look-behind case costs PCRE2's whole budget per line: an eighth of the bytes.
                n = max(1, (total // 8 if "(?<!" in regex else total) // (length + 1))
                log = os.path.join(tmp, "f.log")
                with open(log, "w") as f:
                    f.write((line + "\n") * n)
                best = None
                for _ in range(args.reps):
                    cpu, out = run([ferroban, "regex", "--print-no-missed", log, regex])
                    got_lines, got_matched = counts(out, f"ferroban on {name} L={length}")
                    want = n if all_match else 0
                    if (got_lines, got_matched) != (n, want):
                        sys.exit(
                            f"redos.py: {name} L={length}: ferroban read {got_lines} lines, "
                            f"matched {got_matched}; expected {n} lines, {want} matched"
                        )
                    best = cpu if best is None else min(best, cpu)
                ferro[length] = (best - ferro_start) / (n * (length + 1)) * 1e9
                print(f"{name}: ferroban L={length}: {ferro[length]:.2f} ns/byte", file=sys.stderr)
            f2b_times = {}
            for length in F2B_LENGTHS:
                log = os.path.join(tmp, "one.log")
                with open(log, "w") as f:
                    f.write(gen(length) + "\n")
                cpu, out = f2b_run(log, regex, args.f2b_timeout)
                if cpu is None:
                    f2b_times[length] = None
                    print(f"{name}: fail2ban-regex L={length}: timeout", file=sys.stderr)
                    break
                _, f2b_matched = counts(out, f"fail2ban-regex on {name} L={length}")
                _, ours = run([ferroban, "regex", "--print-no-missed", log, regex])
                _, ferro_matched = counts(ours, f"ferroban on {name} L={length}")
                if f2b_matched != ferro_matched:
                    sys.exit(
                        f"redos.py: {name} L={length}: fail2ban-regex matched {f2b_matched}, "
                        f"ferroban {ferro_matched}"
                    )
                f2b_times[length] = max(0.0, cpu - f2b_start)
                print(f"{name}: fail2ban-regex L={length}: {cpu - f2b_start:.3f} s", file=sys.stderr)
            rows.append((name, regex, ferro, f2b_times))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def kib(n):
        return f"{n >> 10} KiB" if n >= 1024 else f"{n} B"

    print(f"\nferroban regex, user CPU per byte of log ({args.mib} MiB per point, best of {args.reps}, "
          "start-up subtracted):\n")
    print("| case | failregex | " + " | ".join(kib(n) for n in FERRO_LENGTHS) + " |")
    print("|---|---|" + "---:|" * len(FERRO_LENGTHS))
    for name, regex, ferro, _ in rows:
        cells = " | ".join(f"{ferro[n]:.2f} ns" for n in FERRO_LENGTHS)
        print(f"| {name} | `{regex}` | {cells} |")
    print(f"\nfail2ban-regex 1.0.2, user CPU for ONE line of the length given (start-up "
          f"{f2b_start:.2f} s subtracted; timeout {args.f2b_timeout:g} s; matched counts equal "
          "to ferroban's wherever it finished):\n")
    for name, _, _, f2b_times in rows:
        cells = []
        for n, t in f2b_times.items():
            cells.append(f"{kib(n)}: " + (f"> {args.f2b_timeout:g} s (timeout)" if t is None else f"{t:.3f} s"))
        print(f"- {name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
