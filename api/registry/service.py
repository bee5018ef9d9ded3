"""The model registry's rules: register, record an evaluation, activate, roll back.

Activation is two steps the caller runs in order: :func:`check_activation` (may this model be
served?), then — after the Rasa server has loaded it — :func:`mark_active` (the record). A model
is never recorded as active unless Rasa took it. No commits here except in ``*_flow`` functions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import utcnow
from api.events import Event, publish_on_commit
from api.registry.models import BotModel, ModelEvent, ModelStatus, RasaProcess
from api.settings import REPO_ROOT


class NotAllowed(ValueError):
    """The model may not be served (gate failed, never evaluated, file gone...)."""


class NotFound(LookupError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stored_path(path: Path) -> str:
    """Paths inside the project are kept relative to it, so a moved checkout still works."""
    path = path.resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def file_of(model: BotModel) -> Path:
    path = Path(model.path)
    return path if path.is_absolute() else REPO_ROOT / path


def evaluation_dir_of(model: BotModel) -> Path | None:
    if not model.evaluation_dir:
        return None
    path = Path(model.evaluation_dir)
    return path if path.is_absolute() else REPO_ROOT / path


def get(session: Session, model_id: int) -> BotModel:
    model = session.get(BotModel, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model


def active(session: Session) -> BotModel | None:
    return session.scalar(select(BotModel).where(BotModel.status == ModelStatus.active))


def register(session: Session, *, path: Path, source: str, by: str,
             data_hash: str | None = None) -> BotModel:
    """Record a model file as a candidate (the same file twice is one entry)."""
    if not path.is_file():
        raise NotFound(f"no model file at {path}")
    sha = sha256_of(path)
    existing = session.scalar(select(BotModel).where(BotModel.sha256 == sha))
    if existing is not None:
        return existing
    model = BotModel(name=path.name.removesuffix(".tar.gz"), path=stored_path(path), sha256=sha,
                     data_hash=data_hash, source=source, status=ModelStatus.candidate,
                     created_by=by, created_at=utcnow())
    session.add(model)
    session.flush()
    _event(session, model, "registered", by, {"source": source})
    return model


def record_evaluation(session: Session, model: BotModel, *, metrics: dict[str, Any],
                      gate: dict[str, Any], compared_with: BotModel | None,
                      evaluation_dir: Path, by: str) -> None:
    model.metrics, model.gate = metrics, gate
    model.compared_with_id = compared_with.id if compared_with else None
    model.evaluation_dir = stored_path(evaluation_dir)
    if model.status in (ModelStatus.candidate, ModelStatus.rejected):
        model.status = ModelStatus.candidate if gate["passed"] else ModelStatus.rejected
    _event(session, model, "evaluated", by, {"passed": gate["passed"],
                                              "reasons": gate.get("reasons") or []})


def check_activation(session: Session, model_id: int) -> BotModel:
    """The model, if it may be served now; :class:`NotAllowed` says why not."""
    model = get(session, model_id)
    if model.status == ModelStatus.active:
        raise NotAllowed(f"{model.name} is already the active model")
    if model.status == ModelStatus.rejected:
        reasons = "; ".join((model.gate or {}).get("reasons") or [])
        raise NotAllowed(f"{model.name} failed the gate: {reasons}")
    if model.status == ModelStatus.candidate:
        if model.gate is None:
            raise NotAllowed(f"{model.name} has not been evaluated yet (make evaluate)")
        current = active(session)
        if current is not None and model.compared_with_id != current.id:
            raise NotAllowed(f"{model.name} was compared with another model than the active "
                             f"one ({current.name}); evaluate it again")
    if not file_of(model).is_file():
        raise NotAllowed(f"the file of {model.name} is gone ({model.path})")
    return model


def mark_active_flow(session: Session, *, model_id: int, by: str, action: str,
                     processes: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Record that Rasa now serves ``model_id`` (the previous active model is retired), and
    what each Rasa process answered (``processes``: URL -> None when it loaded the model, else
    why not; such a process keeps what it served and is brought up to date later)."""
    model = get(session, model_id)
    for url, error in (processes or {}).items():
        record_process(session, url=url, model_id=None if error else model.id, error=error)
    previous = active(session)
    if previous is not None and previous.id != model.id:
        previous.status = ModelStatus.retired
    model.status = ModelStatus.active
    model.activated_by, model.activated_at = by, utcnow()
    _event(session, model, action, by,
           {"previous_model_id": previous.id if previous else None})
    publish_on_commit(session, Event(f"model.{action}", None, {"model_id": model.id}))
    session.commit()
    return row(model)


def rollback_target(session: Session, to_model_id: int | None = None) -> BotModel:
    """The model a rollback serves: ``to_model_id`` (any model that was active before), or
    the one active before the current one."""
    if to_model_id is not None:
        model = get(session, to_model_id)
        if model.status != ModelStatus.retired or model.activated_at is None:
            raise NotAllowed(f"{model.name} was never served; roll back to a model that was")
        return model
    current = active(session)
    earlier = session.scalars(
        select(BotModel).where(BotModel.status == ModelStatus.retired,
                               BotModel.activated_at.is_not(None))
        .order_by(BotModel.activated_at.desc(), BotModel.id.desc())).first()
    if earlier is None or (current is not None and earlier.id == current.id):
        raise NotAllowed("there is no earlier model to roll back to")
    return earlier


def ensure_serving_flow(session: Session, *, baseline: Path, by: str) -> BotModel:
    """The model ``make run`` serves: the registry's active one; on a first run, the model
    built from the tracked data (``make train``), recorded as active."""
    current = active(session)
    if current is not None:
        return current
    model = register(session, path=baseline, source="baseline", by=by)
    model.status = ModelStatus.active
    model.activated_by, model.activated_at = by, utcnow()
    _event(session, model, "activated", by, {"first_run": True})
    session.commit()
    return model


def record_process(session: Session, *, url: str, model_id: int | None,
                   error: str | None) -> None:
    """What the Rasa process at ``url`` serves: ``model_id`` (None: unchanged, as far as is
    known), and why it does not serve the active model (None: it does)."""
    process = session.get(RasaProcess, url)
    if process is None:
        process = RasaProcess(url=url)
        session.add(process)
    if model_id is not None:
        process.model_id = model_id
    process.error = error[:500] if error else None
    process.checked_at = utcnow()


def record_processes_flow(session: Session, *, results: dict[str, tuple[int | None, str | None]]
                          ) -> None:
    """Several processes at once: URL -> (model_id, error) as in :func:`record_process`."""
    for url, (model_id, error) in results.items():
        record_process(session, url=url, model_id=model_id, error=error)
    session.commit()


def ids_by_file_name(session: Session, *, names: set[str]) -> dict[str, int]:
    """The registry's models whose file is named one of ``names`` (as Rasa's /status names
    the model it serves), newest first."""
    found: dict[str, int] = {}
    for model_id, path in session.execute(
            select(BotModel.id, BotModel.path).order_by(BotModel.id.desc())):
        found.setdefault(Path(path).name, model_id)
    return {name: found[name] for name in names if name in found}


def processes(session: Session, urls: list[str]) -> list[dict[str, Any]]:
    """Each Rasa process of ``urls`` (RASA_URLS, in order): the model it serves as last
    confirmed, whether that is the active one, and why not. A process never heard from yet
    shows no model."""
    rows = {p.url: p for p in session.scalars(
        select(RasaProcess).where(RasaProcess.url.in_(urls)))}
    current = active(session)
    ids = {p.model_id for p in rows.values() if p.model_id is not None}
    names = dict(session.execute(select(BotModel.id, BotModel.name)
                                 .where(BotModel.id.in_(ids))).all()) if ids else {}
    listed = []
    for url in urls:
        process = rows.get(url)
        model_id = process.model_id if process else None
        listed.append({
            "url": url, "model_id": model_id, "model": names.get(model_id),
            "serves_active": (current is not None and model_id == current.id
                              and process.error is None),
            "error": process.error if process else None,
            "checked_at": process.checked_at if process else None})
    return listed


def history(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ModelEvent, BotModel.name).join(BotModel, BotModel.id == ModelEvent.model_id)
        .order_by(ModelEvent.id.desc()).limit(limit)).all()
    return [{"id": e.id, "model_id": e.model_id, "model": name, "action": e.action, "by": e.by,
             "at": e.at, "detail": e.detail} for e, name in rows]


def models(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(BotModel).order_by(BotModel.id.desc()))
    return [row(m) for m in rows]


def row(model: BotModel) -> dict[str, Any]:
    return {"id": model.id, "name": model.name, "path": model.path, "sha256": model.sha256,
            "data_hash": model.data_hash, "source": model.source, "status": model.status.value,
            "created_by": model.created_by, "created_at": model.created_at,
            "metrics": model.metrics, "gate": model.gate,
            "compared_with_id": model.compared_with_id,
            "activated_by": model.activated_by, "activated_at": model.activated_at,
            "file_present": file_of(model).is_file()}


def _event(session: Session, model: BotModel, action: str, by: str,
           detail: dict[str, Any] | None = None) -> None:
    session.add(ModelEvent(model_id=model.id, action=action, by=by, at=utcnow(), detail=detail))
