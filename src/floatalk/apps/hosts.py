"""Which Host names and page origins the server accepts (`HostRules`), read from the flags
`--host`, `--allowed-host` and `--allow-origin` once; the server's `OriginGate` enforces them.
Plain Python, so the command line checks the flags without importing the web stack.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["HostRules", "host_name", "origin_of"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(host: str) -> str:
    """The name or address of a Host header's value, lower case, without port, brackets or a
    trailing dot ('[::1]:8000' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":")[0]
    return host.rstrip(".")


def origin_of(value: str) -> str | None:
    """An Origin (or --allow-origin) value as 'scheme://host[:port]', lower case; None for 'null'
    or anything that is no origin."""
    parts = urlsplit(value.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostRules:
    """The names a request's Host may give and the other origins that may change state.

    listen: the address the server listens on (--host); allowed_hosts: more names it answers to
    (--allowed-host: a reverse proxy's public name, say); allow_origins: sites whose pages may
    send requests that change state and read the answers (--allow-origin, 'https://app.example')."""

    listen: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        origins = []
        for given in self.allow_origins:
            origin = origin_of(given)
            if origin is None:
                raise ValueError(f"not an origin (scheme://host[:port]): {given!r}")
            origins.append(origin)
        object.__setattr__(self, "allow_origins", tuple(origins))
        object.__setattr__(self, "allowed_hosts", tuple(host_name(h) for h in self.allowed_hosts))

    def host_allowed(self, name: str) -> bool:
        """Whether a Host header's name is one of the server's own (see the class)."""
        if name in self.allowed_hosts or name == host_name(self.listen):
            return True
        listen, ip = _ip(host_name(self.listen)), _ip(name)
        if listen is None or listen.is_loopback:  # 127.0.0.1, ::1, localhost
            return name in _LOOPBACK_NAMES or (ip is not None and ip.is_loopback)
        if listen.is_unspecified:  # 0.0.0.0 or ::, every address of this machine
            # A literal address cannot be rebound: a browser that names it connected to it.
            return ip is not None or name in (*_LOOPBACK_NAMES, socket.gethostname().lower(), socket.getfqdn().lower())
        return False

    def origin_allowed(self, origin: str | None, host: str) -> bool:
        """Whether a request from page `origin` (None: no Origin header) to `host` may change state:
        no Origin (not a browser, or a same-origin navigation), the same host and port, or one of
        allow_origins."""
        if origin is None:
            return True
        normal = origin_of(origin)
        if normal is None:
            return False
        return normal in self.allow_origins or urlsplit(normal).netloc == host.strip().lower()
