"""``CurrentStaff``: the staff member behind the request's bearer token (401 otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import service
from api.dependencies import ServicesDep
from api.enums import StaffRole
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


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def get_current_staff(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> StaffRef:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    secret = services.settings.auth_token_secret

    def load(session):
        staff = service.staff_for_token(session=session, secret=secret,
                                        token=credentials.credentials)
        return StaffRef.of(staff) if staff else None

    ref = await services.db.run(load)
    if ref is None:
        raise _unauthorized("invalid or expired token")
    return ref


CurrentStaff = Annotated[StaffRef, Depends(get_current_staff)]
