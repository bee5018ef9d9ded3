"""The cluster's own rows: one per live replica (its heartbeat) and one per lease."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, UTCDateTime, utcnow

# Replica ids: REPLICA_ID, by default hostname-pid.
REPLICA_ID_CHARS = 128


class ReplicaBeat(Base):
    """A replica's heartbeat: while ``seen_at`` is recent its claims and leases are its own."""

    __tablename__ = "cluster_replicas"

    id: Mapped[str] = mapped_column(String(REPLICA_ID_CHARS), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """Work that runs on one replica of the cluster at a time (the handoff timers): held by
    ``holder`` for as long as its heartbeat stays recent."""

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(REPLICA_ID_CHARS))
    since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
