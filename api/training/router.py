"""``/api/v1/training``: start a training job, follow it, read its evaluation (operators only)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from api.auth.dependencies import CurrentOperator
from api.columns import ID_MAX
from api.dependencies import ServicesDep
from api.registry import service as registry
from api.training import service

router = APIRouter(prefix="/api/v1/training", tags=["training"])
JobId = Annotated[int, PathParam(ge=1, le=ID_MAX)]
ModelId = Annotated[int, PathParam(ge=1, le=ID_MAX)]
PLOTS = ("per_intent_f1.png", "summary.png", "candidate/confusion.png", "active/confusion.png")


@router.post("/jobs", status_code=202)
async def start(staff: CurrentOperator, services: ServicesDep) -> dict:
    """Validate the data, train a candidate, score it against the active model (one job at a
    time: 409 while one runs). The served model is never touched."""
    try:
        job_id = await services.training.submit(by=staff.handle)
    except service.Busy as exc:
        raise HTTPException(409, str(exc)) from None
    return await services.db.run(service.get, job_id=job_id)


@router.get("/jobs")
async def jobs(staff: CurrentOperator, services: ServicesDep) -> list[dict]:
    return await services.db.run(service.jobs)


@router.get("/jobs/{job_id}")
async def job(job_id: JobId, staff: CurrentOperator, services: ServicesDep) -> dict:
    """Status, phase, progress (0-100) and, when it failed, why (with the log's tail)."""
    try:
        return await services.db.run(service.get, job_id=job_id)
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/models/{model_id}/evaluation")
async def evaluation(model_id: ModelId, staff: CurrentOperator, services: ServicesDep) -> dict:
    """The side-by-side comparison with the model that was active when it was scored."""
    def load(session):
        model = registry.get(session, model_id)
        return registry.row(model), registry.evaluation_dir_of(model)
    try:
        row, base = await services.db.run(load)
    except registry.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if base is None:
        raise HTTPException(404, "this model has not been evaluated")
    comparison = base / "comparison.json"
    messages = base / "messages.json"
    return {"model": row,
            "comparison": json.loads(comparison.read_text()) if comparison.exists() else None,
            "messages": json.loads(messages.read_text()) if messages.exists() else [],
            "plots": [name for name in PLOTS if (base / name).exists()]}


@router.get("/models/{model_id}/plots/{name:path}", response_class=FileResponse,
            responses={200: {"content": {"image/png": {"schema": {"type": "string",
                                                                  "format": "binary"}}}}})
async def plot(model_id: ModelId, name: str, staff: CurrentOperator,
               services: ServicesDep) -> FileResponse:
    if name not in PLOTS:
        raise HTTPException(404, "no such plot")
    try:
        base = await services.db.run(
            lambda s: registry.evaluation_dir_of(registry.get(s, model_id)))
    except registry.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if base is None or not (base / name).is_file():
        raise HTTPException(404, "no such plot")
    return FileResponse(base / name, media_type="image/png",
                        headers={"Cache-Control": "no-store"})
