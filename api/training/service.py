"""Training-job records (no commits here except in ``*_flow`` functions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import utcnow
from api.events import Event, publish_on_commit
from api.training.models import JobStatus, TrainingJob

OPEN = (JobStatus.queued, JobStatus.running)


class Busy(RuntimeError):
    """A job is already queued or running (one at a time)."""


class NotFound(LookupError):
    pass


def running(session: Session) -> TrainingJob | None:
    return session.scalar(select(TrainingJob).where(TrainingJob.status.in_(OPEN)))


def create_flow(session: Session, *, by: str) -> int:
    current = running(session)
    if current is not None:
        raise Busy(f"training job {current.id} is still {current.status.value}")
    job = TrainingJob(status=JobStatus.running, phase="validating", progress=0.0,
                      started_by=by, created_at=utcnow())
    session.add(job)
    session.commit()
    return job.id


def update_flow(session: Session, *, job_id: int, **fields: Any) -> None:
    job = session.get(TrainingJob, job_id)
    for name, value in fields.items():
        setattr(job, name, value)
    if fields.get("status") in (JobStatus.succeeded, JobStatus.failed):
        job.finished_at = utcnow()
        publish_on_commit(session, Event("training.finished", None,
                                         {"job_id": job.id, "status": job.status.value}))
    session.commit()


def fail_interrupted_flow(session: Session, *, why: str) -> list[int]:
    """Jobs left open by a previous process can never finish: say so."""
    ids = []
    for job in session.scalars(select(TrainingJob).where(TrainingJob.status.in_(OPEN))):
        job.status, job.error, job.finished_at = JobStatus.failed, why, utcnow()
        ids.append(job.id)
    session.commit()
    return ids


def get(session: Session, job_id: int) -> dict[str, Any]:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise NotFound(f"training job {job_id} not found")
    return row(job)


def jobs(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    rows = session.scalars(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit))
    return [row(j) for j in rows]


def row(job: TrainingJob) -> dict[str, Any]:
    return {"id": job.id, "status": job.status.value, "phase": job.phase,
            "progress": round(job.progress, 1), "started_by": job.started_by,
            "created_at": job.created_at, "finished_at": job.finished_at,
            "data_hash": job.data_hash, "error": job.error, "log_tail": job.log_tail,
            "model_id": job.model_id}
