"""``POST /api/v1/auth/login``: a handle and password for a bearer token (lock-out after
repeated failures, shared with the inbox's sign-in)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from api.auth import security, service
from api.auth.schemas import LoginRequest, TokenRead
from api.dependencies import ServicesDep
from api.errors import ErrorBody

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LockedOut(Exception):
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds


def check_login(session, *, handle: str, password: str, now):
    """The staff member for a handle and password (None when wrong); raises
    :class:`LockedOut` while the handle is locked. Commits the failure count."""
    from api.inbox import sessions

    until = sessions.locked_until(session=session, handle=handle, now=now)
    if until is not None:
        raise LockedOut(max(1, int((until - now).total_seconds())))
    staff = service.authenticate(session=session, handle=handle, password=password)
    if staff is None:
        sessions.record_failure(session=session, handle=handle, now=now)
    else:
        sessions.clear_failures(session=session, handle=handle)
    session.commit()
    return staff


@router.post("/login", response_model=TokenRead,
             responses={401: {"model": ErrorBody, "description": "wrong handle or password"},
                        429: {"model": ErrorBody,
                              "description": "locked out after repeated failures"}})
async def login(body: LoginRequest, services: ServicesDep) -> TokenRead:
    settings = services.settings

    def work(session):
        staff = check_login(session, handle=body.handle, password=body.password,
                            now=services.handoff.clock.now())
        if staff is None:
            return None
        return security.issue_token(secret=settings.auth_token_secret, staff_id=staff.id,
                                    password_hash=staff.password_hash,
                                    ttl_s=settings.auth_token_ttl_s), staff.id

    try:
        result = await services.db.run(work)
    except LockedOut as exc:
        raise HTTPException(429, "too many failed logins; try again later",
                            headers={"Retry-After": str(exc.seconds)}) from None
    if result is None:
        log.info("login refused")
        raise HTTPException(401, "wrong handle or password",
                            headers={"WWW-Authenticate": "Bearer"})
    token, staff_id = result
    log.info("staff %s logged in", staff_id)
    return TokenRead(access_token=token, expires_in=settings.auth_token_ttl_s)
