"""Password hashing (argon2id, in its own small thread pool) and bearer tokens (HMAC-SHA256
signed, with an expiry).

A token is ``base64url(json claims) "." base64url(signature)``; its claims carry the staff id,
the expiry and the person's token version at issue. The version lives in the database
(``staff.token_version``): signing out or setting a password raises it, which ends every token
issued before, on every replica.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_cache: dict[str, str] = {}
_cache_lock = threading.Lock()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def shared_hash(password: str) -> str:
    """One argon2 hash per password per process (demo accounts share the same password)."""
    with _cache_lock:
        if password not in _cache:
            _cache[password] = _hasher.hash(password)
        return _cache[password]


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash to verify against when the handle is unknown, so both cases take as long.
_DUMMY: list[str] = []


def dummy_verify(password: str) -> None:
    if not _DUMMY:
        _DUMMY.append(_hasher.hash("not-a-real-password"))
    verify_password(_DUMMY[0], password)


class PasswordWorkers:
    """argon2 (~50 ms of CPU per call) in a small pool of its own: a flood of sign-ins queues
    here instead of taking the threads that database calls (message intake) run in."""

    def __init__(self, max_workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers,
                                            thread_name_prefix="argon2")

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._call(hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._call(verify_password, password_hash, password)

    async def dummy_verify(self, password: str) -> None:
        await self._call(dummy_verify, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    staff_id: int
    expires: int
    version: int  # the person's token version when the token was issued


def issue_token(*, secret: str, staff_id: int, version: int, ttl_s: int,
                now: float | None = None) -> str:
    claims = {"sub": staff_id, "exp": int((now or time.time()) + ttl_s), "ver": version}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def read_token(*, secret: str, token: str, now: float | None = None) -> Claims | None:
    """The token's claims when its signature is right and it has not expired, else None."""
    try:
        body, sig = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        claims = json.loads(_unb64(body))
        staff_id, expires, version = int(claims["sub"]), int(claims["exp"]), int(claims["ver"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= (now or time.time()):
        return None
    return Claims(staff_id, expires, version)
