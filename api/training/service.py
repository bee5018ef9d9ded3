"""Training-job records (no commits here except in ``*_flow`` functions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cluster import service as cluster
from api.cluster.service import Member
from api.db import utcnow
from api.events import Event, publish_on_commit
from api.training.models import JobStatus, TrainingJob

OPEN = (JobStatus.queued, JobStatus.running)
ORPHANED = "interrupted: the switchboard running it stopped or restarted"


class Busy(RuntimeError):
    """A job is already queued or running (one at a time)."""


class NotFound(LookupError):
    pass


def running(session: Session) -> TrainingJob | None:
    return session.scalar(select(TrainingJob).where(TrainingJob.status.in_(OPEN)))


def create_flow(session: Session, *, by: str, member: Member | None = None) -> int:
    """Open a job run by ``member`` (None: this process alone); one at a time in the cluster.
    A job left open by a replica that died no longer counts: it is failed first."""
    with cluster.serialised(session, cluster.TRAINING_JOBS_LOCK):
        if member is not None:
            _fail_orphans(session, member=member, why=ORPHANED, own=True)
        current = running(session)
        if current is not None:
            raise Busy(f"training job {current.id} is still {current.status.value}")
        job = TrainingJob(status=JobStatus.running, phase="validating", progress=0.0,
                          started_by=by, created_at=utcnow(),
                          replica_id=member.replica_id if member else None)
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


def fail_orphaned_flow(session: Session, *, member: Member, own: bool,
                       why: str = ORPHANED) -> list[int]:
    """Jobs left open by a replica that died can never finish: say so. Another live replica's
    job is left running. ``own``: this replica runs no job (it is starting), so an open job
    under its REPLICA_ID is its previous run's."""
    ids = _fail_orphans(session, member=member, why=why, own=own)
    session.commit()
    return ids


def _fail_orphans(session: Session, *, member: Member, why: str, own: bool) -> list[int]:
    ids = []
    for job in session.scalars(select(TrainingJob).where(TrainingJob.status.in_(OPEN))):
        if job.replica_id == member.replica_id:
            if not own:
                continue
        elif cluster.is_alive(session, replica_id=job.replica_id, member=member):
            continue
        job.status, job.error, job.finished_at = JobStatus.failed, why, utcnow()
        publish_on_commit(session, Event("training.finished", None,
                                         {"job_id": job.id, "status": job.status.value}))
        ids.append(job.id)
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
