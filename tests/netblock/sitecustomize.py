"""No network in the tests: any connection or name look-up outside the loopback fails loudly.

Imported by every Python process of the test session: the session itself (``conftest.py``) and, through
``PYTHONPATH``, every script it starts (``train.py``, ``skelgen``, ...), so that a hidden download of
weights or data fails instead of passing on a machine that happens to be online.
"""

from __future__ import annotations

import ipaddress
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class NetworkBlocked(OSError):
    """A test tried to reach the network."""


def _local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _blocked(what: str):
    raise NetworkBlocked(f"network access is blocked in skelgen's tests: {what}")


def install() -> None:
    """Patch ``socket`` so that only loopback addresses (and Unix sockets) can be reached."""
    if getattr(socket, "_skelgen_blocked", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded(method):
        def call(self, address, *args):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
                _blocked(f"connect to {address[0]}:{address[1]}")
            return method(self, address, *args)

        return call

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not _local(host):
            _blocked(f"name look-up of {host}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = guarded(connect), guarded(connect_ex)
    socket.getaddrinfo = guarded_getaddrinfo
    socket._skelgen_blocked = True


install()
