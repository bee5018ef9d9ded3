"""Authentication rules: sign-in attempts and lock-out, bearer tokens and their revocation,
passwords, demo accounts (no commits here)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.auth import security
from api.auth.models import LoginAttempt
from api.db import UTCDateTime
from api.inbox import sessions
from api.inbox.models import StaffSession
from api.staff import service as staff_service
from api.staff.models import Staff

log = logging.getLogger(__name__)


def attempt_key(handle: str) -> str:
    """Handles are counted case-insensitively (the column holds 64 characters)."""
    return handle.strip().lower()[:64]


@dataclass(frozen=True)
class Attempt:
    """One counted sign-in attempt: the how-many-th in its window, and the lock if any."""

    number: int
    locked_until: dt.datetime | None


def count_attempt(*, session: Session, handle: str, address: str, now: dt.datetime,
                  limit: int, window_s: int, lockout_s: int) -> Attempt:
    """Count a sign-in attempt for ``handle`` from ``address`` before its password is checked.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (SQLite and PostgreSQL), so
    concurrent attempts each get their own number. The ``limit``-th attempt in a window sets
    ``locked_until``; attempts numbered above ``limit`` are refused unchecked. A window (or an
    expired lock) starts the count again. A successful sign-in deletes the row.
    """
    table = LoginAttempt.__table__
    c = table.c
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    def when(value: dt.datetime | None):
        return literal(value, UTCDateTime())

    lock_end = now + dt.timedelta(seconds=lockout_s)
    lock_at_first = lock_end if limit <= 1 else None
    starts_again = or_(
        and_(c.locked_until.is_not(None), c.locked_until <= when(now)),
        and_(c.locked_until.is_(None),
             c.window_started_at <= when(now - dt.timedelta(seconds=window_s))),
    )
    stmt = insert.values(
        handle=attempt_key(handle), address=address[:64], attempts=1, window_started_at=now,
        locked_until=lock_at_first,
    ).on_conflict_do_update(
        index_elements=[c.handle, c.address],
        set_={
            "attempts": case((starts_again, 1), else_=c.attempts + 1),
            "window_started_at": case((starts_again, when(now)), else_=c.window_started_at),
            "locked_until": case(
                (starts_again, when(lock_at_first)),
                (c.locked_until.is_not(None), c.locked_until),
                (c.attempts + 1 >= limit, when(lock_end)),
                else_=when(None),
            ),
        },
    ).returning(c.attempts, c.locked_until)
    number, locked_until = session.execute(stmt).one()
    return Attempt(number, locked_until)


def clear_attempts(*, session: Session, handle: str, address: str) -> None:
    """A successful sign-in: forget the count for this handle and address."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.handle == attempt_key(handle),
                                               LoginAttempt.address == address[:64]))


@dataclass(frozen=True)
class Candidate:
    """Who a sign-in names, read before the (slow) password check runs outside the session."""

    staff_id: int
    password_hash: str


def sign_in_candidate(*, session: Session, handle: str) -> Candidate | None:
    """The active staff member with this handle and a password, else None."""
    staff = staff_service.get_by_handle(session=session, handle=handle.strip())
    if staff is None or not staff.active or not staff.password_hash:
        return None
    return Candidate(staff.id, staff.password_hash)


def staff_for_token(*, session: Session, secret: str, token: str) -> Staff | None:
    """The staff member a valid, unexpired token names, unless their tokens were ended since
    (sign-out or a new password raise ``token_version``)."""
    claims = security.read_token(secret=secret, token=token)
    if claims is None:
        return None
    staff = session.get(Staff, claims.staff_id)
    if staff is None or not staff.active or staff.token_version != claims.version:
        return None
    return staff


def end_tokens(*, session: Session, staff_id: int, keep_session: str | None = None) -> None:
    """End every bearer token and inbox session of a person (except the browser session whose
    cookie token is ``keep_session``, when given)."""
    session.execute(update(Staff).where(Staff.id == staff_id)
                    .values(token_version=Staff.token_version + 1))
    ended = delete(StaffSession).where(StaffSession.staff_id == staff_id)
    if keep_session is not None:
        ended = ended.where(StaffSession.token_hash != sessions.token_hash(keep_session))
    session.execute(ended)
    session.expire_all()


def set_password(*, session: Session, staff_id: int, password_hash: str,
                 keep_session: str | None = None) -> None:
    """Give a person a new password hash and end their tokens and other sessions."""
    session.execute(update(Staff).where(Staff.id == staff_id)
                    .values(password_hash=password_hash))
    end_tokens(session=session, staff_id=staff_id, keep_session=keep_session)


def token_version(*, session: Session, staff_id: int) -> int | None:
    return session.scalar(select(Staff.token_version).where(Staff.id == staff_id))


def reset_demo_passwords(*, session: Session, password: str) -> list[str]:
    """Give every staff member ``password`` (local mode only); returns their handles."""
    hashed = security.shared_hash(password)
    handles = []
    for staff in session.scalars(select(Staff).order_by(Staff.id)):
        if staff.password_hash != hashed and not (
            staff.password_hash and security.verify_password(staff.password_hash, password)
        ):
            staff.password_hash = hashed
            staff.token_version += 1
        handles.append(staff.handle)
    session.flush()
    return handles


def accounts_with_password(*, session: Session, password: str) -> list[str]:
    """Handles whose password is ``password`` (to refuse default credentials in production)."""
    found, checked = [], {}
    for staff in session.scalars(select(Staff).where(Staff.password_hash.is_not(None))):
        if staff.password_hash not in checked:
            checked[staff.password_hash] = security.verify_password(staff.password_hash,
                                                                    password)
        if checked[staff.password_hash]:
            found.append(staff.handle)
    return found
