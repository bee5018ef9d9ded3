"""Training jobs: one at a time, with their progress and, when they fail, why."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import enum_column
from api.db import Base, UTCDateTime, utcnow


class JobStatus(enum.StrEnum):
    """queued -> running -> succeeded | failed (a job whose replica died is failed)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class TrainingJob(Base):
    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus), index=True)
    phase: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    data_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("bot_models.id", ondelete="SET NULL"))
    # The replica running the job: only its death (a stale heartbeat) fails it from elsewhere.
    replica_id: Mapped[str | None] = mapped_column(String(128))
