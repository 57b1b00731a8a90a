"""A small FastAPI app whose failed logins ferroban's `fastapi-auth` jail can ban.

Run it with uvicorn behind nginx (see README.md):

    FASTAPI_DEMO_PASSWORD=... uvicorn app:app --host 127.0.0.1 --port 8000 \
        --proxy-headers --forwarded-allow-ips=127.0.0.1

Endpoints:
  GET  /        -> 200 {"status": "ok"} (a health check)
  POST /login   -> form (application/x-www-form-urlencoded) or JSON body with the
                   string fields `user` and `password`: 200 on the demo user's
                   credentials, 401 otherwise, 400 for a malformed body.

Configuration (environment):
  FASTAPI_DEMO_USER      the one demo user's name (default: demo)
  FASTAPI_DEMO_PASSWORD  its password (required: the app refuses to start without)
  FASTAPI_AUTH_LOG       the log file (default: /var/log/fastapi/auth.log)

Each failed login writes one line to the log file, in local time with milliseconds:

    2026-11-25 14:00:00,123 WARNING fastapi-auth: failed login for user 'bob' from 198.51.100.7

The user name is what the client sent, cut to 64 characters and then
percent-encoded (UTF-8) except for ASCII letters, digits and `@ + . _ ~ -`:
between the quotes there is never a quote, a space, a backslash or a line
break, so a user name like "x' from 203.0.113.50" is written as
'x%27%20from%20203.0.113.50' and cannot make the line name another address.
The address is the client's as uvicorn reports it: with `--proxy-headers
--forwarded-allow-ips=<the proxy's address>` uvicorn takes it from
X-Forwarded-For only when the connection comes from that proxy, and then the
right-most entry that is not a trusted proxy, i.e. the address nginx appended
($proxy_add_x_forwarded_for), never one a client wrote into the header. The
app also checks that it is an IP address (an IPv4-mapped IPv6 address is
written as IPv4) and writes `unknown` otherwise.

A successful login writes an INFO line ("successful login for user ...")
which the filter does not count.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import logging.handlers
import os
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LOG_PATH = os.environ.get("FASTAPI_AUTH_LOG", "/var/log/fastapi/auth.log")
DEMO_USER = os.environ.get("FASTAPI_DEMO_USER", "demo")
try:
    DEMO_PASSWORD = os.environ["FASTAPI_DEMO_PASSWORD"]
except KeyError:
    raise SystemExit("app.py: set FASTAPI_DEMO_PASSWORD (the demo user's password)") from None
if not DEMO_PASSWORD:
    raise SystemExit("app.py: FASTAPI_DEMO_PASSWORD is empty")

MAX_BODY = 4096
MAX_USER_CHARS = 64


def _auth_logger() -> logging.Logger:
    log = logging.getLogger("fastapi-auth")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not log.handlers:
        # WatchedFileHandler reopens the file after logrotate moved it away.
        handler = logging.handlers.WatchedFileHandler(LOG_PATH, encoding="utf-8")
        # asctime's default format is local time "YYYY-MM-DD HH:MM:SS,mmm".
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    return log


auth_log = _auth_logger()
app = FastAPI(title="ferroban FastAPI example", docs_url=None, redoc_url=None, openapi_url=None)


def escape_user(user: str) -> str:
    """The user name as it goes into the log: cut, then percent-encoded (see the module doc)."""
    return quote(user[:MAX_USER_CHARS], safe="@+", errors="backslashreplace")


def client_address(request: Request) -> str:
    """The client's IP address as text, or `unknown`."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


async def _credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from a form or JSON body, or None when the body is not one."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict):
                return None
            user, password = data.get("user"), data.get("password")
        elif ctype == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            user = form.get("user", [None])[0]
            password = form.get("password", [None])[0]
        else:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(user, str) or not isinstance(password, str):
        return None
    return user, password


@app.get("/")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/login")
async def login(request: Request) -> JSONResponse:
    creds = await _credentials(request)
    if creds is None:
        return JSONResponse(
            {"detail": "send user and password as a form or as JSON"}, status_code=400
        )
    user, password = creds
    # Both comparisons always run: the time taken does not tell whether the user exists.
    user_ok = _same(user, DEMO_USER)
    password_ok = _same(password, DEMO_PASSWORD)
    addr = client_address(request)
    if user_ok and password_ok:
        auth_log.info("successful login for user '%s' from %s", escape_user(user), addr)
        return JSONResponse({"detail": "welcome", "user": DEMO_USER})
    auth_log.warning("failed login for user '%s' from %s", escape_user(user), addr)
    return JSONResponse({"detail": "invalid user or password"}, status_code=401)
