"""This process as a member of the cluster: its heartbeat and the leases it holds.

The heartbeat runs in a thread of its own, so a busy event loop or a full pool of database
threads cannot make a live replica look dead to the others.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import anyio

from api.cluster import service
from api.cluster.service import Member
from api.db import Database
from api.settings import Settings

log = logging.getLogger(__name__)


class Replica:
    def __init__(self, *, db: Database, settings: Settings) -> None:
        self.db = db
        # One id per process start: a replica restarted under the same REPLICA_ID is another
        # member, so the claims its killed predecessor left go through the takeover (and its
        # tracker check) instead of being taken as its own and sent to Rasa again at once.
        self.id = f"{settings.replica_id[:100]}.{secrets.token_hex(4)}"
        self.member = Member(self.id, settings.cluster_stale_s)
        self.heartbeat_s = settings.cluster_heartbeat_s
        self._wanted: frozenset[str] = frozenset()  # replaced, never changed: read by the beat
        self._held: dict[str, float] = {}  # lease -> monotonic time it was last confirmed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Beat once before anything is claimed, then every ``CLUSTER_HEARTBEAT_S``."""
        await anyio.to_thread.run_sync(self.beat)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="replica-heartbeat", daemon=True)
        self._thread.start()
        log.info("replica %s: heartbeat every %ss, taken over after %ss", self.id,
                 self.heartbeat_s, self.member.stale_s)

    async def stop(self, *, leave: bool = True) -> None:
        """Stop beating. ``leave``: hand leases and claims to the others at once (a clean
        shutdown); without it, they wait for the heartbeat to go stale, as after a crash."""
        self._stop.set()
        if self._thread is not None:
            await anyio.to_thread.run_sync(self._thread.join)
            self._thread = None
        self._held.clear()
        if leave:
            await self.db.run(_leave_flow, replica_id=self.id)

    def want(self, lease: str) -> None:
        """Ask for a lease: each heartbeat takes it when it is free or its holder died."""
        self._wanted = self._wanted | {lease}

    def holds(self, lease: str) -> bool:
        """Whether this replica holds ``lease``: confirmed recently enough that no other replica
        can have taken it since (a margin of one heartbeat for the clocks)."""
        confirmed = self._held.get(lease)
        return (confirmed is not None
                and time.monotonic() - confirmed < self.member.stale_s - self.heartbeat_s)

    def beat(self) -> None:
        """One heartbeat: this replica's row and the leases it wants, in one transaction."""
        started = time.monotonic()
        wanted = sorted(self._wanted)
        with self.db.session() as session:
            service.heartbeat(session, replica_id=self.id)
            held = {name for name in wanted
                    if service.claim_lease(session, name=name, member=self.member)}
            session.commit()
        for name in wanted:
            if name in held:
                if name not in self._held:
                    log.info("replica %s: took the %s lease", self.id, name)
                self._held[name] = started
            elif self._held.pop(name, None) is not None:
                log.warning("replica %s: lost the %s lease", self.id, name)

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
            except Exception:  # the database may be back at the next beat
                log.exception("replica %s: heartbeat failed", self.id)


def _leave_flow(session, *, replica_id: str) -> None:
    service.leave(session, replica_id=replica_id)
    session.commit()
