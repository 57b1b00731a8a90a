"""Runs Debian's fail2ban-client (the package's own code, fail2ban.client.fail2banclient) once
per command line, in one interpreter, and prints one JSON object per invocation:
{"form": ..., "args": [...], "code": exit status, "out": stdout}.

usage: driver.py CONFDIR SOCKET FORMS_FILE DIR

FORMS_FILE: lines `FORM | WORDS`, WORDS split like a shell (shlex); `#` lines and blank lines
are skipped; `@DIR@` in WORDS stands for DIR (the server's scratch directory). The exit status is what the fail2ban-client script would exit with
(exec_command_line: 0 or 255, or the code of an explicit exit()).

A line `!wait TEXT | WORDS` prints nothing: it runs WORDS (output discarded) until their output
contains TEXT, for at most 10 s (a server that bans in another thread, as fail2ban does, has
banned by then); when TEXT never shows, the lines after it show the difference.
"""
import contextlib
import io
import json
import logging
import shlex
import sys
import time

from fail2ban.client.fail2banclient import exec_command_line

class Capture(io.StringIO):
    """A StringIO that the client's clean-up cannot close."""

    def close(self):
        pass


def run(args):
    """One fail2ban-client invocation: (exit code, stdout, stderr)."""
    # initCmdLine adds a stderr handler on every run: start each run without one.
    for name in ("fail2ban",):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            lg.removeHandler(h)
    buf = Capture()
    err = Capture()
    code = 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        try:
            exec_command_line(["fail2ban-client", "-c", conf, "-s", sock, "--timeout", "5"] + args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:  # a crash of the client itself
            code = -1
            buf.write("CLIENT CRASH: %r\n" % (e,))
    return code, buf.getvalue(), err.getvalue()


conf, sock, forms, scratch = sys.argv[1:5]
out = sys.stdout
for line in open(forms, encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    form, _, words = line.partition("|")
    args = [w.replace("@DIR@", scratch) for w in shlex.split(words)]
    if form.startswith("!wait "):
        text = form[len("!wait "):].strip()
        deadline = time.monotonic() + 10
        while text not in run(args)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        continue
    code, stdout, stderr = run(args)
    out.write(json.dumps({"form": form.strip(), "args": args, "code": code,
                          "out": stdout, "err": stderr}) + "\n")
    out.flush()
