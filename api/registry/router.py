"""``/api/v1/models``: the registry, activation and rollback (operators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam

from api.auth.dependencies import CurrentOperator
from api.columns import ID_MAX
from api.dependencies import ServicesDep
from api.errors import UPSTREAM_FAILED
from api.registry import activation, schemas
from api.registry import service as registry

router = APIRouter(prefix="/api/v1/models", tags=["models"])
ModelId = Annotated[int, PathParam(ge=1, le=ID_MAX)]


@router.get("")
async def list_models(staff: CurrentOperator, services: ServicesDep) -> dict:
    """Every model (newest first), the active one, the registry's history, and what each Rasa
    process (``RASA_URLS``) serves."""
    def load(session):
        active = registry.active(session)
        return {"models": registry.models(session), "history": registry.history(session),
                "active_id": active.id if active else None,
                "processes": registry.processes(session, services.models.urls)}
    return await services.db.run(load)


@router.post("/{model_id}/activate", responses=UPSTREAM_FAILED)
async def activate(model_id: ModelId, staff: CurrentOperator, services: ServicesDep) -> dict:
    """Serve a scored candidate that passed the gate (or any model served before)."""
    return await _activate(services, staff, model_id=model_id, rollback=False)


@router.post("/rollback", responses=UPSTREAM_FAILED)
async def rollback(body: schemas.Rollback, staff: CurrentOperator,
                   services: ServicesDep) -> dict:
    """One action: serve the model that was active before (or ``to_model_id``)."""
    return await _activate(services, staff, model_id=body.to_model_id, rollback=True)


async def _activate(services, staff, *, model_id: int | None, rollback: bool) -> dict:
    try:
        return await services.models.activate(model_id=model_id, by=staff.handle,
                                              rollback=rollback)
    except registry.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (registry.NotAllowed, activation.Busy) as exc:
        raise HTTPException(409, str(exc)) from None
    except activation.ActivationFailed as exc:
        raise HTTPException(502, str(exc)) from None
