"""Who may post to the REST channel, and as which fan.

Rasa's REST channel is meant to sit behind a trusted backend; ours says so in code. A call
carries ``Authorization: Bearer <credential>``, one of:

- the shared secret (``REST_SHARED_SECRET``): a trusted backend, which names the fan in the body
  (``sender``);
- a JWT signed HS256 with ``REST_JWT_SECRET`` (as Rasa's ``--jwt-secret``), whose ``sub`` claim
  names the fan and which must carry ``exp``. ``sub`` is JWT's own claim for "who this token is
  about" (RFC 7519), the one identity providers and JWT libraries fill; Rasa's ``user.username``
  belongs to its HTTP API, not to its channels. A body ``sender`` that differs is refused (403):
  a client that names someone else is wrong, and saying so beats answering the wrong fan.

Local mode stays open for the README's curl examples: no credential means the body names the
sender; a credential that is sent is still checked.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import jwt
from fastapi import HTTPException, Request

from api.settings import Settings

log = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"
CHALLENGE = 'Bearer realm="rest"'


@dataclass(frozen=True)
class RestCaller:
    """``sender``: the fan the token names (JWT), or None when the body names them."""

    sender: str | None
    how: str  # "jwt", "shared_secret" or "local"


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthorized("Authorization must be 'Bearer <shared secret or JWT>'",
                            "invalid_request")
    return credential.strip()


def authenticate(request: Request, settings: Settings) -> RestCaller:
    """The caller of a REST channel request; 401 (with ``WWW-Authenticate``) otherwise."""
    credential = _bearer(request)
    if credential is None:
        if settings.is_local:
            return RestCaller(None, "local")
        raise _unauthorized("a credential is required: Authorization: Bearer <shared secret "
                            "or JWT>")
    secret = settings.rest_shared_secret
    if secret and hmac.compare_digest(credential.encode(), secret.encode()):
        return RestCaller(None, "shared_secret")
    if not settings.rest_jwt_secret:
        raise _unauthorized("invalid credential", "invalid_token")
    try:
        claims = jwt.decode(credential, settings.rest_jwt_secret, algorithms=[JWT_ALGORITHM],
                            options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired", "invalid_token") from None
    except jwt.InvalidTokenError as exc:
        log.info("rest: token refused (%s)", type(exc).__name__)
        raise _unauthorized("invalid credential", "invalid_token") from None
    return RestCaller(str(claims["sub"]), "jwt")  # checked as a body sender is
