"""``/api/v1/auth``: sign in for a bearer token (lock-out per handle and client address,
shared with the inbox's sign-in), sign out (ends every token), change one's password."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials

from api.auth.authenticator import LockedOut, WrongPassword
from api.auth.dependencies import CurrentStaff, bearer, client_address
from api.auth.schemas import LoginRequest, PasswordChange, TokenRead
from api.dependencies import ServicesDep
from api.errors import ErrorBody
from api.inbox.sessions import COOKIE
from api.ratelimit.dependencies import login_allowed, too_many

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

UNAUTHORIZED = {401: {"model": ErrorBody,
                      "description": "missing, invalid, expired or revoked token"}}
LOCKED = {429: {"model": ErrorBody,
                "description": "locked out after repeated failures, or too many attempts from "
                               "this address (see Retry-After)"}}


def locked_out(exc: LockedOut) -> HTTPException:
    return HTTPException(429, "too many failed logins; try again later",
                         headers={"Retry-After": str(exc.seconds)})


@router.post("/login", response_model=TokenRead,
             responses={401: {"model": ErrorBody, "description": "wrong handle or password"},
                        **LOCKED})
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> TokenRead:
    limit = await login_allowed(request, services)
    if not limit.allowed:
        raise too_many(limit, "too many sign-in attempts from this address")
    auth = services.auth
    try:
        signed_in = await auth.sign_in(handle=body.handle, password=body.password,
                                       address=client_address(request))
    except LockedOut as exc:
        raise locked_out(exc) from None
    if signed_in is None:
        log.info("login refused")
        raise HTTPException(401, "wrong handle or password",
                            headers={"WWW-Authenticate": "Bearer"})
    log.info("staff %s logged in", signed_in.staff_id)
    return TokenRead(access_token=auth.issue_token(signed_in),
                     expires_in=services.settings.auth_token_ttl_s)


@router.post("/logout", status_code=204, response_class=Response, responses=UNAUTHORIZED)
async def logout(staff: CurrentStaff, services: ServicesDep) -> Response:
    """End every bearer token and inbox session of the caller (on every device)."""
    await services.auth.sign_out(staff_id=staff.id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/password", response_model=TokenRead,
             responses={**UNAUTHORIZED,
                        403: {"model": ErrorBody, "description": "the current password is wrong"},
                        **LOCKED})
async def change_password(body: PasswordChange, request: Request, staff: CurrentStaff,
                          services: ServicesDep,
                          credentials: Annotated[HTTPAuthorizationCredentials | None,
                                               Depends(bearer)]) -> TokenRead:
    """Set a new password; every other token and inbox session of the caller ends. The reply
    carries a fresh token (the one used for this call ended too); a browser keeps its session."""
    minimum = services.settings.auth_min_password_chars
    if len(body.new_password) < minimum:
        raise RequestValidationError([{
            "type": "string_too_short", "loc": ("body", "new_password"),
            "msg": f"String should have at least {minimum} characters",
        }])
    keep = request.cookies.get(COOKIE) if credentials is None else None
    try:
        signed_in = await services.auth.change_password(
            staff_id=staff.id, handle=staff.handle, address=client_address(request),
            old_password=body.old_password, new_password=body.new_password, keep_session=keep)
    except LockedOut as exc:
        raise locked_out(exc) from None
    except WrongPassword:
        raise HTTPException(403, "the current password is wrong") from None
    return TokenRead(access_token=services.auth.issue_token(signed_in),
                     expires_in=services.settings.auth_token_ttl_s)
