"""The one error contract of the HTTP API: every error is ``{"detail": ...}`` — a sentence, or
for 422 the list of field errors (or an object with the reasons). ``ERROR_RESPONSES`` declares
the codes every router can give, so the OpenAPI schema (and the fuzzer that reads it) knows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]] | dict[str, Any]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("malformed request (not UTF-8, not JSON, wrong shape)"),
    401: _error("missing, wrong, expired or revoked credentials"),
    403: _error("not allowed for this staff member, or a wrong signature or CSRF token"),
    404: _error("no such object, or the feature is off"),
    409: _error("conflicts with the object's current state"),
    413: _error("request body too large (MAX_BODY_BYTES)"),
    422: _error("invalid field values"),
    429: _error("too many requests; see Retry-After"),
}

# Routes that call Rasa and say so when it fails.
UPSTREAM_FAILED: dict[int | str, dict[str, Any]] = {
    502: _error("an upstream service (Rasa) failed; nothing changed"),
}

# Webhooks whose sender delivers again until answered 200 (Meta): an event could not be stored.
NOT_STORED: dict[int | str, dict[str, Any]] = {
    503: _error("an event could not be stored (the database refused it); the events that were "
                "stored are skipped when the delivery is sent again"),
}
