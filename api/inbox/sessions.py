"""Browser sessions (no commits here).

The session cookie holds a random token; only its SHA-256 is stored, next to a per-session CSRF
token that every state-changing cookie request must echo in ``X-CSRF-Token`` (or a ``csrf``
form field). Signing out, or a new password, deletes the rows (api.auth.service.end_tokens).
Sign-in lock-out is api.auth's, shared with the JSON login.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.inbox.models import StaffSession

COOKIE = "sb_session"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(*, session: Session, staff_id: int, now: dt.datetime,
           ttl_s: int) -> tuple[str, str]:
    """A new browser session; returns ``(cookie token, csrf token)``."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=token_hash(token), csrf_token=csrf, staff_id=staff_id,
                             created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s)))
    session.flush()
    return token, csrf


def lookup(*, session: Session, token: str, now: dt.datetime) -> StaffSession | None:
    """The live session of a cookie token, else None."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is None or row.expires_at <= now:
        return None
    return row


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())
