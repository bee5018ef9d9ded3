"""``GET /healthz``: 200 once the database, Rasa (with a model) and the action server answer.

``GET /livez``: 200 while this process serves and its database answers — what a load balancer
checks (Rasa being down must not take the replicas out: fans still get holding replies, the inbox
and the webhooks still work).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.dependencies import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


async def _check_db(services) -> dict[str, Any]:
    try:
        # Bounded: a balancer's check must get an answer even when the database hangs.
        with anyio.fail_after(services.settings.health_timeout_s):
            await anyio.to_thread.run_sync(services.db.ping, abandon_on_cancel=True)
        return {"ok": True, "kind": services.settings.database_kind}
    except Exception as exc:  # any failure means "not ready"
        return {"ok": False, "error": type(exc).__name__}


async def _check_rasa(services) -> dict[str, Any]:
    # Names the failure, never its message: Rasa's URLs carry its token (``?token=``).
    try:
        status = await services.rasa.status()
    except Exception as exc:
        return {"ok": False, "error": getattr(exc, "kind", type(exc).__name__)}
    model = status.get("model_file") or status.get("model_id")
    return {"ok": bool(model), "model": model}


async def _check_actions(services) -> dict[str, Any]:
    url = services.settings.action_server_base + "/health"
    try:
        resp = await services.http.get(url, timeout=services.settings.health_timeout_s)
        return {"ok": resp.status_code == 200}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


@router.get("/healthz", responses={503: {"description": "not ready (the same body: a check says "
                                                       "what is missing)"}})
async def healthz(services: ServicesDep) -> JSONResponse:
    db, rasa, actions = await asyncio.gather(
        _check_db(services), _check_rasa(services), _check_actions(services)
    )
    checks = {"database": db, "rasa": rasa, "action_server": actions,
              "triage": services.handoff.health()}
    ready = all(c["ok"] for c in checks.values())
    body = {
        "status": "ok" if ready else "starting",
        "checks": checks,
        "messenger": "on" if services.settings.messenger_enabled else "off",
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/livez", responses={503: {"description": "the database does not answer"}})
async def livez(services: ServicesDep) -> JSONResponse:
    db = await _check_db(services)
    body = {"status": "ok" if db["ok"] else "down", "checks": {"database": db}}
    return JSONResponse(body, status_code=200 if db["ok"] else 503)
