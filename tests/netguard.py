"""Loopback-only network guard for the test suite (issue 9 item 9: no test or local run may resolve a public host).

A ``sys.addaudithook`` hook sees every ``socket.getaddrinfo``/``socket.connect``/``socket.sendto`` of the process,
including asyncio's and aiohttp's. Any host that is not loopback is recorded in the file named by
``HLMM_NETGUARD_LOG`` (one line: pid, event, host) and refused with ``PermissionError``, so a test that dials out
fails instead of silently reaching the internet. The test session installs it in its own process and, through
``tests/_netguard/sitecustomize.py`` on ``PYTHONPATH``, in every Python subprocess it starts (``hlmm run``,
``hlmm exchange``, the guardian)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

ENV_LOG = "HLMM_NETGUARD_LOG"
_installed = False


def is_loopback(host: Any) -> bool:
    """True for names and addresses that cannot leave the machine (None: a local/passive lookup)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    h = host.strip("[]").lower()
    if h in ("", "localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _host_of(event: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
    """(is a network endpoint, host) for the audited events that name a remote endpoint."""
    if event == "socket.getaddrinfo":
        return True, args[0]
    if event in ("socket.connect", "socket.sendto"):
        sock, addr = args[0], args[1]
        fam = getattr(sock, "family", None)
        if fam not in (socket.AF_INET, socket.AF_INET6) or not isinstance(addr, tuple):
            return False, None  # unix sockets, socketpairs
        return True, addr[0]
    return False, None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):
        return
    net, host = _host_of(event, args)
    if not net or is_loopback(host):
        return
    path = os.environ.get(ENV_LOG)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {event} {host!r} {' '.join(sys.argv[:3])}\n")
        except OSError:
            pass
    raise PermissionError(f"netguard: {event} to non-loopback host {host!r} refused in tests")


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def violations(path: str | None = None) -> list[str]:
    p = path or os.environ.get(ENV_LOG)
    if not p or not os.path.exists(p):
        return []
    with open(p, encoding="utf-8") as f:
        return [ln.rstrip("\n") for ln in f if ln.strip()]
