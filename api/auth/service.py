"""Authentication rules: log in, read a bearer token, demo accounts (no commits here)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import security
from api.staff import service as staff_service
from api.staff.models import Staff

log = logging.getLogger(__name__)


def authenticate(*, session: Session, handle: str, password: str) -> Staff | None:
    """The active staff member with this handle and password, else None."""
    staff = staff_service.get_by_handle(session=session, handle=handle)
    if staff is None or not staff.active or not staff.password_hash:
        security.dummy_verify(password)
        return None
    return staff if security.verify_password(staff.password_hash, password) else None


def staff_for_token(*, session: Session, secret: str, token: str) -> Staff | None:
    """The staff member a valid, unexpired token names (revoked by a password change)."""
    claims = security.read_token(secret=secret, token=token)
    if claims is None:
        return None
    staff = session.get(Staff, claims.staff_id)
    if staff is None or not staff.active:
        return None
    if security.fingerprint(staff.password_hash) != claims.fingerprint:
        return None
    return staff


def reset_demo_passwords(*, session: Session, password: str) -> list[str]:
    """Give every staff member ``password`` (local mode only); returns their handles."""
    hashed = security.shared_hash(password)
    handles = []
    for staff in session.scalars(select(Staff).order_by(Staff.id)):
        if staff.password_hash != hashed and not (
            staff.password_hash and security.verify_password(staff.password_hash, password)
        ):
            staff.password_hash = hashed
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
