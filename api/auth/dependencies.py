"""``CurrentStaff``: the staff member behind the request's bearer token, or the inbox's session
cookie (401 otherwise). A cookie request that changes state must carry the session's CSRF token
in ``X-CSRF-Token`` (403 otherwise); bearer requests are exempt (no ambient credential)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import service
from api.dependencies import ServicesDep
from api.enums import StaffRole
from api.ratelimit.address import client_address as forwarded_address
from api.staff.models import Staff

bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/login")


@dataclass(frozen=True)
class StaffRef:
    """The authenticated staff member (a snapshot; the request's session is gone)."""

    id: int
    handle: str
    name: str
    title: str
    role: StaffRole

    @property
    def supervisor(self) -> bool:
        return self.role in (StaffRole.supervisor, StaffRole.admin)

    @classmethod
    def of(cls, staff: Staff) -> StaffRef:
        return cls(staff.id, staff.handle, staff.name, staff.title, staff.role)


def client_address(request: Request) -> str:
    """The address sign-in attempts are counted against: the peer, or behind a trusted balancer
    the X-Forwarded-For hop it set (the rate limits' own rule)."""
    return forwarded_address(request, request.app.state.services.settings)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_current_staff(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> StaffRef:
    if credentials is None:
        from api.inbox.sessions import COOKIE

        cookie = request.cookies.get(COOKIE)
        if cookie and request.headers.get("authorization") is None:
            return await staff_for_cookie(request, services, cookie)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    secret = services.settings.auth_token_secret

    def load(session):
        staff = service.staff_for_token(session=session, secret=secret,
                                        token=credentials.credentials)
        return StaffRef.of(staff) if staff else None

    ref = await services.db.run(load)
    if ref is None:
        raise _unauthorized("invalid, expired or revoked token")
    return ref


async def staff_for_cookie(request: Request, services, cookie: str) -> StaffRef:
    """The staff member of an inbox session cookie; CSRF-checked for unsafe methods."""
    from api.inbox import sessions

    now = services.handoff.clock.now()

    def load(session):
        row = sessions.lookup(session=session, token=cookie, now=now)
        if row is None:
            return None
        staff = session.get(Staff, row.staff_id)
        if staff is None or not staff.active:
            return None
        return StaffRef.of(staff), row.csrf_token

    found = await services.db.run(load)
    if found is None:
        raise _unauthorized("session expired; sign in again")
    ref, csrf = found
    if request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if not sessions.csrf_ok(csrf, given):
            raise HTTPException(403, "missing or wrong CSRF token")
    request.state.csrf_token = csrf
    return ref


CurrentStaff = Annotated[StaffRef, Depends(get_current_staff)]


async def get_current_operator(staff: CurrentStaff) -> StaffRef:
    """Operators (and admins) retrain the bot; everyone else gets 403."""
    if staff.role not in (StaffRole.operator, StaffRole.admin):
        raise HTTPException(403, "operators only")
    return staff


CurrentOperator = Annotated[StaffRef, Depends(get_current_operator)]
