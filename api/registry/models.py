"""The model registry: every model file, where it came from, how it scored, who served it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.columns import JSONType, enum_column
from api.db import Base, UTCDateTime, utcnow


class ModelStatus(enum.StrEnum):
    """candidate --activate--> active --(another activated)--> retired --activate--> active;
    candidate --gate failed--> rejected (never served)."""

    candidate = "candidate"
    rejected = "rejected"
    active = "active"
    retired = "retired"


class BotModel(Base):
    __tablename__ = "bot_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    data_hash: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # baseline | console | cli
    status: Mapped[ModelStatus] = mapped_column(enum_column(ModelStatus), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The evaluation summary (accuracy, macro-F1, per-intent F1, conversations) and the gate's
    # verdict against the model that was active when it was scored.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    compared_with_id: Mapped[int | None] = mapped_column(
        ForeignKey("bot_models.id", ondelete="SET NULL"))
    evaluation_dir: Mapped[str | None] = mapped_column(String(1000))
    activated_by: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ModelEvent(Base):
    """The registry's history: registered, evaluated, activated, rolled back, rejected."""

    __tablename__ = "bot_model_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("bot_models.id", ondelete="CASCADE"),
                                          index=True)
    action: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class RasaProcess(Base):
    """What one Rasa process (a URL of ``RASA_URLS``) serves, as last confirmed: by its answer
    to an activation's load, or by the periodic check of its ``/status``. ``error``: why it
    does not serve the active model (it was down, or refused); None once it does."""

    __tablename__ = "rasa_processes"

    url: Mapped[str] = mapped_column(String(500), primary_key=True)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("bot_models.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(String(500))
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
