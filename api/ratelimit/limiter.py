"""Rate limits per client address and per fan session or sender (the ``limits`` library).

Each limit is a rate plus a burst (``RATE_LIMIT_*`` and ``RATE_LIMIT_*_BURST``), enforced as a
moving window of ``burst`` hits per ``floor(burst / rate)`` seconds: a client may send ``burst``
at once, and about ``rate`` a second after that (never less than ``rate``). Counters live in
memory (one process), or in Redis when ``RATE_LIMIT_STORAGE_URL`` names one (shared by replicas).
Keys are hashed: no address or session id is stored as such.

A storage that fails lets the request through (logged): losing a fan's message is worse than a
missed limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from enum import Enum

from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api.ratelimit.address import is_loopback
from api.settings import Settings

log = logging.getLogger(__name__)


class Scope(str, Enum):
    """What a limit counts, and per what."""

    address = "address"  # every limited request of one client address (web chat, REST)
    session_request = "session_request"  # new web chat sessions of one client address
    sender = "sender"  # one fan's messages: a web chat session or a REST sender
    login = "login"  # sign-in attempts of one client address


def window(rate: str, burst: int) -> RateLimitItem:
    """``burst`` hits per ``floor(burst / rate)`` seconds (at least one second, and at least
    ``rate`` a second on average)."""
    item = parse(rate)
    per_s = item.amount / item.get_expiry()
    seconds = max(1, math.floor(burst / per_s))
    return RateLimitItemPerSecond(max(burst, math.ceil(per_s * seconds)), seconds)


def limits_from(settings: Settings) -> dict[Scope, RateLimitItem]:
    return {
        Scope.address: window(settings.rate_limit_address, settings.rate_limit_address_burst),
        Scope.session_request: window(settings.rate_limit_session_request,
                                      settings.rate_limit_session_request_burst),
        Scope.sender: window(settings.rate_limit_sender, settings.rate_limit_sender_burst),
        Scope.login: window(settings.rate_limit_login, settings.rate_limit_login_burst),
    }


def _storage(url: str, prefix: str) -> Storage:
    if url.startswith("memory://"):
        return MemoryStorage()
    if url.startswith(("redis://", "rediss://")):
        # redis-py's asyncio client (already a dependency), not coredis
        return storage_from_string(f"async+{url}", implementation="redispy", key_prefix=prefix)
    return storage_from_string(url, key_prefix=prefix)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the refused client may try again


ALLOWED = Verdict(True)


class RateLimits:
    """One per process, built by the composition root and handed to the channels and routers."""

    def __init__(self, settings: Settings) -> None:
        self.limits = limits_from(settings)
        self.storage = _storage(settings.rate_limit_storage_url, settings.rate_limit_key_prefix)
        self.strategy = MovingWindowRateLimiter(self.storage)
        # The project's load and fault tests run from loopback: exempt there in local mode.
        self.exempt_loopback = settings.is_local and not settings.rate_limit_loopback
        self.refused: dict[Scope, int] = {scope: 0 for scope in Scope}

    def exempt(self, address: str) -> bool:
        return self.exempt_loopback and is_loopback(address)

    async def hit(self, scope: Scope, key: str) -> Verdict:
        """Count one request of ``key`` (an address, a session id, a sender) against ``scope``."""
        item = self.limits[scope]
        ident = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:24]
        try:
            if await self.strategy.hit(item, scope.value, ident):
                return ALLOWED
            reset, _ = await self.strategy.get_window_stats(item, scope.value, ident)
        except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("rate limit storage failed (%s): request allowed", type(exc).__name__)
            return ALLOWED
        self.refused[scope] += 1
        return Verdict(False, max(1, math.ceil(reset - time.time())))

    async def check(self, address: str, *steps: tuple[Scope, str]) -> Verdict:
        """Count a request from ``address`` against each ``(scope, key)`` in order; the first
        refusal stops (later counters are not charged). Exempt addresses pass untouched."""
        if self.exempt(address):
            return ALLOWED
        for scope, key in steps:
            verdict = await self.hit(scope, key)
            if not verdict.allowed:
                log.info("rate limit %s reached: retry in %s s", scope.value,
                         verdict.retry_after)
                return verdict
        return ALLOWED

    async def reset(self) -> None:
        """Forget every counter (tests)."""
        await self.storage.reset()
