"""The client address of a request or socket: the peer, or behind a trusted balancer the
right-most untrusted entry of ``X-Forwarded-For`` (entries further left are whatever the client
claimed and cannot be trusted)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


@lru_cache(maxsize=16)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES``: comma-separated addresses or CIDR networks (``10.0.0.0/8``)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in spec.split(",") if part.strip())


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:4711"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:4711"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip, networks: Iterable[Network]) -> bool:
    return ip is not None and any(ip in net for net in networks)


def _scope(obj: Any) -> Mapping[str, Any]:
    """An ASGI scope from a Starlette request or websocket, an engineio environ or a scope."""
    if hasattr(obj, "scope"):
        return obj.scope
    if isinstance(obj, Mapping) and "asgi.scope" in obj:
        return obj["asgi.scope"]
    return obj


def client_address(scope_or_request: Any, settings: Any) -> str:
    """The address a request or socket connection comes from (see the module docstring).

    Accepts a Starlette ``Request``/``WebSocket``, an ASGI scope or python-engineio's connect
    ``environ``; ``settings.trusted_proxies`` lists the balancers (default: none)."""
    scope = _scope(scope_or_request)
    client = scope.get("client")
    peer = str(client[0]) if client else UNKNOWN
    networks = trusted_networks(getattr(settings, "trusted_proxies", "") or "")
    if not networks or not _trusted(_ip(peer), networks):
        return peer
    entries: list[str] = []
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            entries.extend(value.decode("latin-1").split(","))
    address = peer
    for entry in reversed(entries):
        ip = _ip(entry)
        if ip is None:
            break  # garbage a trusted hop passed on: the last hop we understood is the client
        address = str(ip)
        if not _trusted(ip, networks):
            break
    return address


def is_loopback(address: str) -> bool:
    ip = _ip(address)
    return ip is not None and ip.is_loopback
