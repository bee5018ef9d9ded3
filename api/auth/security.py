"""Password hashing (argon2id) and bearer tokens (HMAC-SHA256 signed, with an expiry).

A token is ``base64url(json claims) "." base64url(signature)``; its claims carry the staff id,
the expiry and a fingerprint of the password hash, so changing a password revokes old tokens.
Nothing about tokens is stored server-side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Claims:
    staff_id: int
    expires: int
    fingerprint: str


def issue_token(*, secret: str, staff_id: int, password_hash: str | None, ttl_s: int,
                now: float | None = None) -> str:
    claims = {"sub": staff_id, "exp": int((now or time.time()) + ttl_s),
              "pv": fingerprint(password_hash)}
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
        staff_id, expires, pv = int(claims["sub"]), int(claims["exp"]), str(claims["pv"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= (now or time.time()):
        return None
    return Claims(staff_id, expires, pv)
