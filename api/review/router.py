"""``/api/v1/review``: the review queue and annotation (operators only)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from actions.venue import Venue
from api.auth.dependencies import CurrentOperator
from api.cluster import service as cluster
from api.columns import ID_MAX
from api.dependencies import ServicesDep
from api.review import schemas, service, training_data
from api.review.models import ReviewReason, ReviewStatus
from api.text import StorableStr

router = APIRouter(prefix="/api/v1/review", tags=["review"])
ItemId = Annotated[int, PathParam(ge=1, le=ID_MAX)]


def _project(services) -> Path:
    return services.settings.bot_project_dir


def _fact_names(project: Path) -> set[str]:
    return set(Venue.load(project / "data" / "venue.yml").template_facts())


async def _collect(services) -> None:
    # One collector at a time: two would race to create the same rows.
    lock = services.extras.setdefault("review_collect_lock", asyncio.Lock())
    async with lock:
        await services.db.run(_collect_flow, low=services.settings.review_low_confidence)


def _collect_flow(session, *, low: float) -> None:
    with cluster.serialised(session, cluster.REVIEW_COLLECT_LOCK):  # and one in the cluster
        service.collect(session, low_confidence=low)
        session.commit()


@router.get("/items")
async def list_items(
    staff: CurrentOperator, services: ServicesDep,
    status: Annotated[ReviewStatus | Literal["all"], Query()] = ReviewStatus.new,
    reason: ReviewReason | None = None,
    intent: Annotated[StorableStr | None, Query(max_length=100)] = None,
    q: Annotated[StorableStr | None, Query(max_length=200)] = None,
    sort: Literal["count", "recent", "confidence"] = "count",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=ID_MAX)] = 0,
) -> dict:
    """The queue, brought up to date first: one row per distinct question, with its count."""
    await _collect(services)
    return await services.db.run(
        service.list_items, status=None if status == "all" else status,
        reason=reason.value if reason else None, intent=intent, q=q, sort=sort, limit=limit,
        offset=offset)


@router.get("/items/{item_id}")
async def item(item_id: ItemId, staff: CurrentOperator, services: ServicesDep) -> dict:
    """An item with its ranking, the conversations it came from and the personal data in it."""
    return await _run(services, service.item_detail, item_id=item_id)


@router.post("/items/{item_id}/annotate")
async def annotate(item_id: ItemId, body: schemas.Annotate, staff: CurrentOperator,
                   services: ServicesDep) -> dict:
    """Add the (redacted) wording as a training example of an intent, or of a new intent with
    the operator's answer. 422 lists personal data still in the text."""
    project = _project(services)
    new_intent = (service.NewIntent(body.new_intent.name, body.new_intent.answer_en,
                                    body.new_intent.answer_es) if body.new_intent else None)
    return await _run(services, service.annotate_flow, item_id=item_id, by=staff.handle,
                      project=project, intent=body.intent, text=body.text,
                      new_intent=new_intent,
                      confirm_no_personal_data=body.confirm_no_personal_data,
                      fact_names=_fact_names(project) if new_intent else set())


@router.post("/items/{item_id}/triage")
async def add_to_triage(item_id: ItemId, body: schemas.TriageExample, staff: CurrentOperator,
                        services: ServicesDep) -> dict:
    """"Add to triage data": an item staff marked ("should have come to a person" / "did not
    need a person") becomes ``label<TAB>lang<TAB>text`` in data/triage/semantic/reviewed.tsv
    (`make train-triage` retrains with it). 422 lists personal data still in the text."""
    return await _run(services, service.triage_flow, item_id=item_id, by=staff.handle,
                      project=_project(services), label=body.label, text=body.text,
                      lang=body.lang, confirm_no_personal_data=body.confirm_no_personal_data,
                      default_language=services.settings.default_language)


@router.post("/items/bulk")
async def bulk(body: schemas.Bulk, staff: CurrentOperator, services: ServicesDep) -> dict:
    """Ignore, reopen or annotate (one intent, as worded) several items at once."""
    project = _project(services)
    if body.action == "annotate":
        return await _run(services, service.bulk_annotate_flow, item_ids=body.ids,
                          intent=body.intent, by=staff.handle, project=project)
    status = "ignored" if body.action == "ignore" else "new"
    return await _run(services, service.set_status_flow, item_ids=body.ids, status=status,
                      by=staff.handle, project=project)


@router.get("/intents")
async def intents(staff: CurrentOperator, services: ServicesDep) -> dict:
    """Intents an example can be given, and the fact placeholders a new answer may use."""
    project = _project(services)
    return {"intents": training_data.intents(project),
            "facts": sorted(_fact_names(project))}


@router.get("/changes")
async def changes(staff: CurrentOperator, services: ServicesDep) -> list[dict]:
    """Every change to the training data: who, what, when."""
    return await services.db.run(service.changes)


@router.get("/export")
async def export(staff: CurrentOperator, services: ServicesDep,
                 status: ReviewStatus | None = None) -> list[dict]:
    """The queue for automation (personal data replaced by placeholders)."""
    await _collect(services)
    return await services.db.run(service.export, status=status.value if status else None)


async def _run(services, fn, **kwargs):
    try:
        return await services.db.run(fn, **kwargs)
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except service.PersonalData as exc:
        raise HTTPException(422, {
            "message": str(exc),
            "personal_data": [{"kind": f.kind, "start": f.start, "end": f.end, "text": f.text}
                              for f in exc.findings]}) from None
    except training_data.TrainingDataError as exc:
        raise HTTPException(409, str(exc)) from None
