"""Browser sessions and login lock-out (no commits here).

The session cookie holds a random token; only its SHA-256 is stored, next to a per-session CSRF
token that every state-changing cookie request must echo in ``X-CSRF-Token`` (or a ``csrf``
form field). Signing out deletes the row. After ``MAX_FAILURES`` wrong passwords for a handle,
every login for that handle is refused for ``LOCK_MINUTES`` (the JSON login included).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.inbox.models import LoginThrottle, StaffSession

MAX_FAILURES = 5
LOCK_MINUTES = 15
COOKIE = "sb_session"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(*, session: Session, staff_id: int, now: dt.datetime,
           ttl_s: int) -> tuple[str, str]:
    """A new browser session; returns ``(cookie token, csrf token)``."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_hash(token), csrf_token=csrf, staff_id=staff_id,
                             created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s)))
    session.flush()
    return token, csrf


def lookup(*, session: Session, token: str, now: dt.datetime) -> StaffSession | None:
    """The live session of a cookie token, else None."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
    if row is None or row.expires_at <= now:
        return None
    return row


def end(*, session: Session, token: str) -> None:
    """Sign out: forget the session."""
    session.execute(delete(StaffSession).where(StaffSession.token_hash == _hash(token)))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def locked_until(*, session: Session, handle: str, now: dt.datetime) -> dt.datetime | None:
    """When the handle is locked out, until when."""
    row = session.get(LoginThrottle, handle.lower()[:64])
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def record_failure(*, session: Session, handle: str, now: dt.datetime) -> bool:
    """Count a wrong password; True when this failure locks the handle."""
    key = handle.lower()[:64]
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(handle=key, failures=0, updated_at=now)
        session.add(row)
    if row.locked_until is not None and row.locked_until <= now:
        row.failures, row.locked_until = 0, None
    row.failures += 1
    row.updated_at = now
    locked = row.failures >= MAX_FAILURES
    if locked:
        row.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
    session.flush()
    return locked


def clear_failures(*, session: Session, handle: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.handle == handle.lower()[:64]))
