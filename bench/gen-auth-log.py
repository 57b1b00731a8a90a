#!/usr/bin/env python3
"""Deterministic syslog auth.log generator for the sshd benchmarks (bench/peer.sh).

    bench/gen-auth-log.py N [-o FILE] [--seed S]

Writes N lines in the classic syslog layout (`Mmm dd HH:MM:SS host prog[pid]: msg`).
Interleaved OpenSSH connections, each with its own pid (what fail2ban's sshd filter
keys its multi-line bookkeeping on):

- scanners: `Connection from`, `Invalid user`, one to three `Failed password for
  invalid user`, `Connection closed by invalid user ... [preauth]`;
- password guessing on real accounts: `Failed password for root`, PAM
  `authentication failure` lines, `Received disconnect ...: 11: Bye Bye [preauth]`,
  `Disconnected from authenticating user`;
- other probes: `maximum authentication attempts exceeded`, `Disconnecting: Too many
  authentication failures`, `Did not receive identification string`, `banner exchange`,
  `Unable to negotiate`;
- legitimate logins: `Accepted publickey`, PAM session lines, `Received disconnect ...
  disconnected by user`, `Disconnected from user`;
- other programs: CRON, systemd-logind, sudo, kernel firewall lines.

All addresses are documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32). Same seed, same bytes.
"""

import argparse
import random
import sys

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
USERS = "admin test oracle ubuntu guest user postgres ftpuser pi git support www-data jenkins".split()
ALGS = ["diffie-hellman-group1-sha1", "ssh-rsa,ssh-dss", "aes128-cbc,3des-cbc"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("--seed", type=int, default=20261206)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    out = sys.stdout if a.output == "-" else open(a.output, "w", encoding="utf-8")

    def addr() -> str:
        r = rnd.random()
        if r < 0.08:
            return "2001:db8:%x::%x" % (rnd.randrange(1, 0xFFFF), rnd.randrange(1, 0xFFFF))
        net = rnd.choice(["192.0.2", "198.51.100", "203.0.113"])
        return "%s.%d" % (net, rnd.randrange(1, 255))

    # seconds since Jan 1 00:00:00 (year-less syslog dates)
    t = [86400.0 * 4]
    pid = [1000]
    host = "web01"

    def stamp() -> str:
        t[0] += rnd.random() * 0.15
        s = int(t[0])
        day, s = divmod(s, 86400)
        # 31-day months are enough for the span of a benchmark
        month, mday = divmod(day, 31)
        return "%s %2d %02d:%02d:%02d" % (MONTHS[month % 12], mday + 1, s // 3600, s // 60 % 60, s % 60)

    def conn_lines():
        """One connection: its lines (messages only, program and pid added later)."""
        pid[0] += rnd.randrange(1, 50)
        p = pid[0]
        ip = addr()
        port = rnd.randrange(1024, 65535)
        kind = rnd.random()
        msgs = []
        if kind < 0.30:
            u = rnd.choice(USERS)
            msgs.append("Connection from %s port %d on 192.0.2.1 port 22 rdomain \"\"" % (ip, port))
            msgs.append("Invalid user %s from %s port %d" % (u, ip, port))
            for _ in range(rnd.randrange(1, 4)):
                msgs.append("Failed password for invalid user %s from %s port %d ssh2" % (u, ip, port))
            msgs.append("Connection closed by invalid user %s %s port %d [preauth]" % (u, ip, port))
        elif kind < 0.50:
            msgs.append("Connection from %s port %d on 192.0.2.1 port 22 rdomain \"\"" % (ip, port))
            for _ in range(rnd.randrange(1, 4)):
                msgs.append(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % ip
                )
                msgs.append("Failed password for root from %s port %d ssh2" % (ip, port))
            msgs.append("Received disconnect from %s port %d:11: Bye Bye [preauth]" % (ip, port))
            msgs.append("Disconnected from authenticating user root %s port %d [preauth]" % (ip, port))
        elif kind < 0.55:
            msgs.append("error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]" % (ip, port))
            msgs.append("Disconnecting authenticating user root %s port %d: Too many authentication failures [preauth]" % (ip, port))
        elif kind < 0.62:
            msgs.append("Did not receive identification string from %s port %d" % (ip, port))
        elif kind < 0.66:
            msgs.append("banner exchange: Connection from %s port %d: invalid format" % (ip, port))
        elif kind < 0.70:
            msgs.append("Unable to negotiate with %s port %d: no matching key exchange method found. Their offer: %s [preauth]" % (ip, port, rnd.choice(ALGS)))
        else:
            u = rnd.choice(["deploy", "alice", "bob", "backup"])
            msgs.append("Connection from %s port %d on 192.0.2.1 port 22 rdomain \"\"" % (ip, port))
            msgs.append("Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%016x" % (u, ip, port, rnd.getrandbits(64)))
            msgs.append("pam_unix(sshd:session): session opened for user %s(uid=1000) by (uid=0)" % u)
            msgs.append("Received disconnect from %s port %d:11: disconnected by user" % (ip, port))
            msgs.append("Disconnected from user %s %s port %d" % (u, ip, port))
            msgs.append("pam_unix(sshd:session): session closed for user %s" % u)
        return ["sshd[%d]: %s" % (p, m) for m in msgs]

    def other_line() -> str:
        r = rnd.random()
        p = rnd.randrange(2000, 60000)
        if r < 0.4:
            return "CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)" % p
        if r < 0.6:
            return "systemd-logind[412]: New session %d of user deploy." % rnd.randrange(1, 9999)
        if r < 0.8:
            return "sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
        return "kernel: [%d.%06d] [UFW BLOCK] IN=eth0 OUT= SRC=%s DST=192.0.2.1 PROTO=TCP SPT=%d DPT=23" % (
            rnd.randrange(1, 999999), rnd.randrange(0, 999999), addr(), rnd.randrange(1024, 65535))

    active = []
    written = 0
    while written < a.n:
        while len(active) < 8:
            active.append(conn_lines())
        if rnd.random() < 0.15:
            line = other_line()
        else:
            i = rnd.randrange(len(active))
            line = active[i].pop(0)
            if not active[i]:
                active.pop(i)
        out.write("%s %s %s\n" % (stamp(), host, line))
        written += 1
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
