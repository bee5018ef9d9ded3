"""``POST /api/v1/auth/login``: a handle and password for a bearer token."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from api.auth import security, service
from api.auth.schemas import LoginRequest, TokenRead
from api.dependencies import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=TokenRead)
async def login(body: LoginRequest, services: ServicesDep) -> TokenRead:
    settings = services.settings

    def work(session):
        staff = service.authenticate(session=session, handle=body.handle, password=body.password)
        if staff is None:
            return None
        return security.issue_token(secret=settings.auth_token_secret, staff_id=staff.id,
                                    password_hash=staff.password_hash,
                                    ttl_s=settings.auth_token_ttl_s), staff.id

    result = await services.db.run(work)
    if result is None:
        log.info("login refused")
        raise HTTPException(401, "wrong handle or password",
                            headers={"WWW-Authenticate": "Bearer"})
    token, staff_id = result
    log.info("staff %s logged in", staff_id)
    return TokenRead(access_token=token, expires_in=settings.auth_token_ttl_s)
