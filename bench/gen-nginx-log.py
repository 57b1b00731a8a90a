#!/usr/bin/env python3
"""Deterministic generator of an nginx "combined" access log for benchmarks.

    bench/gen-nginx-log.py [N] [--seed S] [-o FILE]

Writes N lines (default 1,000,000) of

    IP - user [dd/Mon/YYYY:HH:MM:SS +0000] "METHOD /path HTTP/1.1" status bytes "referer" "UA"

The same N and seed always give byte-identical output (only Python's
`random.Random` with an integer seed is used, whose sequence is stable across
CPython 3 releases).

The traffic mix is meant to look like a small public web site:
  * ordinary visitors (browsers, feed readers, monitoring, crawlers) fetching
    pages and assets: mostly 200, some 301/304/206, a few 404 (missing assets,
    stale links), rare 403/500;
  * scanners walking lists of well-known admin / CMS / leaked-file paths,
    almost all answered 404, some 403, a few 400 for garbage requests;
  * GET / POST / HEAD plus the odd OPTIONS, PROPFIND or CONNECT;
  * about 8% of clients on IPv6.

Addresses come only from ranges reserved for documentation and benchmarking
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32),
so nothing in the output identifies a real host.
"""

import argparse
import random
import sys

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# --- things ordinary visitors ask for -------------------------------------

PAGES = [
    "/", "/about/", "/contact/", "/blog/", "/blog/page/2/", "/blog/page/3/",
    "/docs/", "/docs/install/", "/docs/configuration/", "/docs/faq/",
    "/docs/api/v2/", "/pricing/", "/download/", "/changelog/", "/team/",
    "/blog/2023/11/rewriting-the-parser/", "/blog/2024/01/release-notes-4-2/",
    "/blog/2024/02/why-we-moved-to-postgres/", "/blog/2024/03/incident-review/",
    "/blog/2024/04/benchmarks-revisited/", "/search?q=install",
    "/search?q=timeout+error", "/tags/networking/", "/tags/security/",
    "/feed.xml", "/sitemap.xml", "/robots.txt", "/login", "/account/settings",
    "/api/v2/status", "/api/v2/items?page=1", "/api/v2/items?page=2",
]
ASSETS = [
    "/static/css/site.4f2a9c.css", "/static/css/print.1b7e03.css",
    "/static/js/app.9d31e0.js", "/static/js/vendor.c0ffee.js",
    "/static/js/search.77ab12.js", "/static/img/logo.svg",
    "/static/img/hero-1600.webp", "/static/img/hero-800.webp",
    "/static/img/team/ada.jpg", "/static/img/team/linus.jpg",
    "/static/fonts/inter-var.woff2", "/static/fonts/jetbrains-mono.woff2",
    "/favicon.ico", "/apple-touch-icon.png", "/downloads/tool-4.2.1.tar.gz",
    "/downloads/tool-4.2.1-x86_64.AppImage", "/media/talk-2024.mp4",
]
# Asked for by real clients but absent on this site: the everyday 404s.
MISSING = [
    "/apple-touch-icon-precomposed.png", "/apple-touch-icon-120x120.png",
    "/favicon.png", "/blog/2019/05/old-post-that-moved/", "/docs/v1/install/",
    "/static/js/app.3e1f00.js", "/static/css/site.old.css", "/ads.txt",
    "/.well-known/security.txt", "/.well-known/traffic-advice",
    "/browserconfig.xml", "/humans.txt", "/docs/instal/", "/blgo/",
]
POSTS = ["/login", "/api/v2/items", "/api/v2/events", "/contact/",
         "/search", "/account/settings"]

# --- what scanners ask for ------------------------------------------------
# Some are names nginx-botsearch looks for, many are not: a realistic scan.
SCAN = [
    "/wp-login.php", "/wp-admin/", "/wp-admin/setup-config.php",
    "/wordpress/wp-login.php", "/blog/wp-login.php", "/wp-signup.php",
    "/wp-content/plugins/revslider/readme.txt", "/xmlrpc.php",
    "/wp-includes/wlwmanifest.xml", "/phpmyadmin/", "/phpMyAdmin/index.php",
    "/pma/", "/myadmin/", "/admin/pma/", "/admin/phpmyadmin/",
    "/mysqladmin/", "/dbadmin/", "/sql/phpmyadmin/", "/typo3/phpmyadmin/",
    "/xampp/phpmyadmin/", "/cgi-bin/luci", "/cgi-bin/test.cgi",
    "/cgi-bin/.%2e/.%2e/bin/sh", "/roundcube/", "/webmail/", "/mail/",
    "/horde/", "/v-webmail/", "/.env", "/.env.production", "/api/.env",
    "/.git/config", "/.git/HEAD", "/.svn/entries", "/.DS_Store",
    "/config.json", "/config/database.yml", "/backup.zip", "/backup.sql",
    "/db.sql", "/dump.tar.gz", "/admin/", "/admin/login.php",
    "/administrator/index.php", "/user/login", "/manager/html",
    "/solr/admin/info/system", "/actuator/env", "/actuator/health",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/index.php?s=/Index/\\think\\app/invokefunction",
    "/boaform/admin/formLogin", "/HNAP1/", "/GponForm/diag_Form?images/",
    "/owa/auth/logon.aspx", "/remote/login", "/ecp/Current/exporttool/",
    "/telescope/requests", "/_ignition/health-check", "/server-status",
    "/shell.php", "/info.php", "/phpinfo.php", "/test.php", "/x.php",
    "/aws.yml", "/.aws/credentials", "/debug/default/view?panel=config",
]
GARBAGE_REQUESTS = [
    "\\x16\\x03\\x01\\x00\\xCA\\x01\\x00\\x00\\xC6\\x03\\x03",
    "\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: mstshash=Administr",
    "SSH-2.0-Go", "MGLNDD_192.0.2.10_443", "GET / HTTP/1.0\\r\\n",
]

# --- user agents (written for this file) ----------------------------------

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.118 Mobile Safari/537.36",
]
TOOLS = [
    "curl/8.5.0", "curl/7.88.1", "Wget/1.21.3", "python-requests/2.31.0",
    "Go-http-client/1.1", "Go-http-client/2.0", "okhttp/4.12.0",
    "FeedReader/3.1 (+https://feeds.example.net/about)",
    "UptimeProbe/2.4 (+https://status.example.org/bot)",
]
CRAWLERS = [
    "Mozilla/5.0 (compatible; ExampleSearchBot/2.1; +https://search.example.com/bot.html)",
    "Mozilla/5.0 (compatible; SampleIndexer/1.0; +https://indexer.example.net/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; DocBot/0.9; +https://docbot.example.org)",
]
SCANNER_UAS = [
    "-", "Mozilla/5.0 zgrab/0.x", "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:45.0) Gecko/20100101 Firefox/45.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36",
    "python-requests/2.25.1", "Go-http-client/1.1", "l9explore/1.2.2",
    "Fuzz Faster U Fool v2.1.0-dev", "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
]
REFERERS = [
    "https://www.example.com/", "https://www.example.com/blog/",
    "https://www.example.com/docs/", "https://search.example.net/?q=example+tool",
    "https://forum.example.org/t/which-tool-do-you-use/4412",
    "https://news.example.net/item?id=39920121",
]
USERS = ["alice", "bob", "deploy", "monitor"]


def v4(rng):
    """A client address from a documentation or benchmarking range."""
    r = rng.random()
    if r < 0.10:
        return "192.0.2.%d" % rng.randrange(1, 255)
    if r < 0.20:
        return "198.51.100.%d" % rng.randrange(1, 255)
    if r < 0.30:
        return "203.0.113.%d" % rng.randrange(1, 255)
    return "198.%d.%d.%d" % (rng.randrange(18, 20), rng.randrange(256),
                             rng.randrange(1, 255))


def v6(rng):
    groups = ["2001", "db8", "%x" % rng.randrange(1, 0xffff)]
    if rng.random() < 0.5:  # compressed form, as nginx prints it
        return ":".join(groups) + "::%x" % rng.randrange(1, 0xffff)
    groups += ["%x" % rng.randrange(0x10000) for _ in range(5)]
    return ":".join(groups)


def make_clients(rng, n, kind):
    out = []
    for _ in range(n):
        ip = v6(rng) if rng.random() < 0.08 else v4(rng)
        if kind == "scanner":
            ua = rng.choice(SCANNER_UAS)
        else:
            r = rng.random()
            ua = (rng.choice(BROWSERS) if r < 0.78 else
                  rng.choice(TOOLS) if r < 0.90 else rng.choice(CRAWLERS))
        out.append((ip, ua))
    return out


def visitor_request(rng):
    """(method, path, status, bytes, referer) of an ordinary visitor."""
    r = rng.random()
    method = "GET"
    if r < 0.06:
        method, path = "POST", rng.choice(POSTS)
    elif r < 0.09:
        method, path = "HEAD", rng.choice(PAGES)
    elif r < 0.095:
        method, path = "OPTIONS", rng.choice(["/api/v2/items", "/api/v2/events", "*"])
    elif r < 0.12:
        path = rng.choice(MISSING)
        return method, path, 404, rng.choice((153, 162, 548, 555)), rng.choice(REFERERS + ["-"])
    elif r < 0.42:
        path = rng.choice(PAGES)
    else:
        path = rng.choice(ASSETS)
    s = rng.random()
    if s < 0.80:
        status = 200
    elif s < 0.89:
        status = 304
    elif s < 0.93:
        status = 301
    elif s < 0.95:
        status = 302
    elif s < 0.965:
        status = 206
    elif s < 0.98:
        status = 403
    elif s < 0.995:
        status = 404
    elif s < 0.998:
        status = 499
    else:
        status = rng.choice((500, 502, 503, 504))
    if status in (304, 499) or method == "HEAD":
        size = 0
    elif status in (301, 302):
        size = rng.choice((162, 169, 178))
    elif status >= 400:
        size = rng.choice((153, 162, 548, 555, 157, 497))
    else:
        size = rng.randrange(300, 250_000) if path.startswith(("/static", "/downloads", "/media")) \
            else rng.randrange(1_200, 48_000)
    ref = "-" if rng.random() < 0.45 else rng.choice(REFERERS)
    return method, path, status, size, ref


def scanner_request(rng):
    r = rng.random()
    if r < 0.015:
        # garbage on the port: nginx logs the raw bytes escaped, status 400
        return None, rng.choice(GARBAGE_REQUESTS), 400, rng.choice((150, 157, 166)), "-"
    method = "GET" if r < 0.80 else ("POST" if r < 0.93 else "HEAD")
    path = rng.choice(SCAN)
    if rng.random() < 0.04:
        path += "?" + rng.choice(("XDEBUG_SESSION_START=phpstorm", "a=fetch", "id=1%27"))
    s = rng.random()
    status = 404 if s < 0.86 else (403 if s < 0.96 else (200 if s < 0.98 else 301))
    size = 0 if method == "HEAD" else rng.choice((153, 162, 548, 555, 146, 4127))
    return method, path, status, size, "-"


def days_in_month(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


class Clock:
    """Non-decreasing wall clock, formatted as nginx does ($time_local, UTC)."""

    def __init__(self, y, mo, d):
        self.y, self.mo, self.d, self.secs = y, mo, d, 0

    def advance(self, s):
        self.secs += s
        while self.secs >= 86400:
            self.secs -= 86400
            self.d += 1
            if self.d > days_in_month(self.y, self.mo):
                self.d, self.mo = 1, self.mo + 1
                if self.mo > 12:
                    self.mo, self.y = 1, self.y + 1

    def stamp(self):
        h, rem = divmod(self.secs, 3600)
        m, s = divmod(rem, 60)
        return "%02d/%s/%d:%02d:%02d:%02d +0000" % (
            self.d, MONTHS[self.mo - 1], self.y, h, m, s)


def generate(n, seed, out):
    rng = random.Random(seed)
    visitors = make_clients(rng, 6000, "visitor")
    scanners = make_clients(rng, 400, "scanner")
    clock = Clock(2024, 5, 30)  # 1M lines span ~2.5 days: crosses a month end
    write = out.write
    scan_left = 0
    scanner = None
    i = 0
    while i < n:
        clock.advance(rng.choice((0, 0, 0, 0, 1)))
        # scanners come in bursts of requests from one address
        if scan_left == 0 and rng.random() < 0.003:
            scanner = rng.choice(scanners)
            scan_left = rng.randrange(3, 40)
        if scan_left > 0 and rng.random() < 0.5:
            scan_left -= 1
            ip, ua = scanner
            method, path, status, size, ref = scanner_request(rng)
        else:
            ip, ua = rng.choice(visitors)
            method, path, status, size, ref = visitor_request(rng)
        user = "-" if rng.random() < 0.995 else rng.choice(USERS)
        if method is None:
            request = path
        else:
            proto = "HTTP/1.1" if rng.random() < 0.93 else rng.choice(("HTTP/2.0", "HTTP/1.0"))
            request = "%s %s %s" % (method, path, proto)
        write('%s - %s [%s] "%s" %d %d "%s" "%s"\n' % (
            ip, user, clock.stamp(), request, status, size, ref, ua))
        i += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lines", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20240530)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    if a.lines < 0:
        ap.error("N must be >= 0")
    if a.output == "-":
        generate(a.lines, a.seed, sys.stdout)
    else:
        with open(a.output, "w", encoding="ascii", newline="\n") as f:
            generate(a.lines, a.seed, f)


if __name__ == "__main__":
    main()
