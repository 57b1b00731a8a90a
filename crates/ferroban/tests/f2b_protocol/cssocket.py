"""Asks the server on SOCKET, through fail2ban's own client library (fail2ban.client.csocket),
for `status`, `banned` and `get web banip --with-time`; prints each answer's repr on a line.

usage: cssocket.py SOCKET
"""
import sys

from fail2ban.client.csocket import CSocket

sock = CSocket(sys.argv[1], timeout=10)
for cmd in (["status"], ["banned"], ["get", "web", "banip", "--with-time"]):
    print(repr(sock.send(cmd)))
sock.close()
