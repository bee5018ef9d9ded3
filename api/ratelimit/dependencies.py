"""Rate limits over HTTP: 429 with ``Retry-After`` in the project's error contract
(``{"detail": "..."}``); nothing of a refused request is stored or acted on."""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.dependencies import ServicesDep
from api.ratelimit.address import client_address
from api.ratelimit.limiter import Scope, Verdict


def too_many(verdict: Verdict, what: str) -> HTTPException:
    return HTTPException(
        429, f"{what}: nothing was stored; try again in {verdict.retry_after} s",
        headers={"Retry-After": str(verdict.retry_after)},
    )


async def login_allowed(request: Request, services: ServicesDep) -> Verdict:
    """Count a sign-in attempt against its client address's login limit."""
    address = client_address(request, services.settings)
    return await services.ratelimits.check(address, (Scope.login, address))
