"""Heartbeats, claims, leases and cluster-wide locks (data access; no commits here).

A replica is alive while its heartbeat row is younger than ``stale_s``. What it claimed (a
conversation's turn, a lease, a training job) stays its own while it lives and is taken over by
another replica once it is not. Times are the replicas' own clocks, which NTP keeps within a
small fraction of ``stale_s`` of each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, delete, exists, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.cluster.models import Lease, ReplicaBeat
from api.db import utcnow

# Names of the cluster-wide locks (:func:`serialised`) and leases (:func:`claim_lease`).
TIMERS_LEASE = "handoff-timers"
TRAINING_DATA_LOCK = "training-data"
TRAINING_JOBS_LOCK = "training-jobs"
REVIEW_COLLECT_LOCK = "review-collect"
# Held while a replica loads a model into the Rasa processes (an activation, or bringing a
# process back to the active model): one at a time in the cluster.
RASA_MODELS_LEASE = "rasa-models"
# Held by the one replica that compares the Rasa processes' models with the registry.
RASA_MODEL_CHECK_LEASE = "rasa-model-check"


@dataclass(frozen=True)
class Member:
    """A replica as claims see it: its id, and how old a heartbeat may be for its holder to
    count as alive."""

    replica_id: str
    stale_s: float

    def alive_after(self) -> dt.datetime:
        return utcnow() - dt.timedelta(seconds=self.stale_s)


def alive(holder: ColumnElement, alive_after: dt.datetime) -> ColumnElement[bool]:
    """SQL: ``holder`` names a replica whose heartbeat is newer than ``alive_after``."""
    return exists().where(ReplicaBeat.id == holder, ReplicaBeat.seen_at > alive_after)


def claim_free(holder: ColumnElement, member: Member) -> ColumnElement[bool]:
    """SQL: a row claimed through the column ``holder`` may be claimed by ``member``: nobody
    holds it, ``member`` already does, or its holder died (heartbeat stale or gone)."""
    return or_(holder.is_(None), holder == member.replica_id,
               ~alive(holder, member.alive_after()))


def is_alive(session: Session, *, replica_id: str | None, member: Member) -> bool:
    """Whether ``replica_id`` has a recent heartbeat (None, an unowned row: no)."""
    if replica_id is None:
        return False
    seen = session.scalar(select(ReplicaBeat.seen_at).where(ReplicaBeat.id == replica_id))
    return seen is not None and seen > member.alive_after()


def _insert(session: Session, model):
    """INSERT with ON CONFLICT support on the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model))


def heartbeat(session: Session, *, replica_id: str) -> None:
    """Say this replica is alive now."""
    now = utcnow()
    stmt = _insert(session, ReplicaBeat).values(id=replica_id, started_at=now, seen_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=[ReplicaBeat.id],
                                               set_={"seen_at": now}))


def leave(session: Session, *, replica_id: str) -> None:
    """A replica stopping cleanly: its leases and claims go to the others at once."""
    session.execute(update(Lease).where(Lease.holder == replica_id)
                    .values(holder=None, since=None))
    session.execute(delete(ReplicaBeat).where(ReplicaBeat.id == replica_id))


def claim_lease(session: Session, *, name: str, member: Member) -> bool:
    """Take or keep the lease ``name``; False while another live replica holds it."""
    now = utcnow()
    taken = session.execute(
        update(Lease).where(Lease.name == name, claim_free(Lease.holder, member))
        .values(holder=member.replica_id,
                since=case((Lease.holder == member.replica_id, Lease.since), else_=now))
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        return True
    created = session.scalar(
        _insert(session, Lease).values(name=name, holder=member.replica_id, since=now)
        .on_conflict_do_nothing(index_elements=[Lease.name]).returning(Lease.name))
    return created is not None


def release_lease(session: Session, *, name: str, member: Member) -> None:
    """Give the lease ``name`` back, if ``member`` holds it."""
    session.execute(update(Lease).where(Lease.name == name, Lease.holder == member.replica_id)
                    .values(holder=None, since=None))


def lease_holder(session: Session, *, name: str) -> str | None:
    return session.scalar(select(Lease.holder).where(Lease.name == name))


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64 bits) for a lock's name."""
    digest = hashlib.blake2b(f"switchboard:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def serialised(session: Session, name: str) -> Iterator[None]:
    """Run the block alone in the cluster. PostgreSQL: a transaction-level advisory lock, held
    until the session's transaction ends (commit inside the block; an error's rollback frees
    it). SQLite serves one process: a thread lock held for the block."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
        yield
        return
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    with lock:
        yield
