"""Serve a model on every Rasa process (``RASA_URLS``): each loads it (no restart), then the
registry records it; a process that missed it is brought up to date when it answers again.

Shared by the console and the CLI. Rasa keeps its old model when loading fails, and the
registry is written only after Rasa said yes:

- every process loaded the model: it is active, and each process is recorded as serving it;
- a process *refused* it (Rasa answered, and could not load it): nothing is recorded as active,
  and the processes that did load it are given the previous model back (502);
- a process could not be reached (down, or the load timed out) while others loaded it: the model
  is active, that process is recorded as behind with the reason, and the periodic check
  (:meth:`ModelServing.check`, every ``RASA_MODEL_CHECK_S``) loads the active model into it
  once its ``/status`` answers with another model; none reached: nothing recorded (502).

The check runs on one replica, the holder of the ``rasa-model-check`` lease. Loading into the
processes runs under the cluster lease ``rasa-models``: one replica at a time
activates or brings processes up to date, so a check never puts back a model an activation on
another replica is replacing. The registry's active model in the database is the truth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from api.cluster import service as cluster
from api.cluster.replica import Replica
from api.cluster.service import RASA_MODEL_CHECK_LEASE, RASA_MODELS_LEASE, Member
from api.db import Database
from api.registry import service as registry
from api.relay.client import RasaClient, RasaError

log = logging.getLogger(__name__)

LEASE_POLL_S = 0.5
# A process that refused the active model is asked again only after this long (a model that
# cannot be loaded there would otherwise be loaded at every check).
REFUSED_RETRY_S = 300.0
# Rasa answered and would not load the model (a bad file, a wrong token): not worth retrying.
REFUSED = "http_status"


class ActivationFailed(RuntimeError):
    """No Rasa process serves the model; the registry did not change."""


class Busy(RuntimeError):
    """Another replica is loading a model into the Rasa processes."""


class ModelServing:
    """The registry's active model on every Rasa process.

    ``processes``: one client per URL of ``RASA_URLS``; empty for a record-only activation
    (``--no-swap``: nothing running). ``member``: this replica, whose heartbeat keeps the lease
    its own while it loads."""

    def __init__(self, *, db: Database, processes: list[RasaClient], member: Member,
                 load_timeout_s: float, check_s: float = 0.0,
                 replica: Replica | None = None) -> None:
        self.db = db
        self.replica = replica  # with one, the check runs only while it holds its lease
        self.processes = processes
        self.member = member
        self.load_timeout_s = load_timeout_s
        self.check_s = check_s
        self._lock = asyncio.Lock()  # this replica's own activations and checks, one at a time
        self._task: asyncio.Task | None = None
        # (URL, model id) -> when that process refused that model, as the check saw it
        self._refused: dict[tuple[str, int], float] = {}

    @property
    def urls(self) -> list[str]:
        return [p.base_url for p in self.processes]

    async def activate(self, *, model_id: int | None, by: str,
                       rollback: bool = False) -> dict[str, Any]:
        """Activate ``model_id`` (gate-checked), or roll back (``rollback=True``: to
        ``model_id`` if given, else to the model active before). The registry row, with
        ``processes``: what each Rasa process serves now."""
        async with self._lock, self._exclusive(wait_s=self.load_timeout_s):
            if rollback:
                model = await self.db.run(
                    lambda s: _snapshot(registry.rollback_target(s, model_id)))
            else:
                model = await self.db.run(
                    lambda s: _snapshot(registry.check_activation(s, model_id)))
            previous = await self.db.run(_active_snapshot)
            results = await self._load(self.processes, model["file"])
            loaded = [url for url, error in results.items() if error is None]
            refused = {url: e for url, e in results.items() if e is not None and e.kind == REFUSED}
            if self.processes and (refused or not loaded):
                await self._give_back(previous, loaded, model, results)
                raise ActivationFailed(f"Rasa did not load {model['name']}: " + "; ".join(
                    f"{url}: {error}" for url, error in results.items() if error is not None))
            missed = {url: f"did not load #{model['id']} {model['name']} ({error}); loaded "
                           "when it answers again" for url, error in results.items() if error}
            action = "rolled_back" if rollback else "activated"
            row = await self.db.run(
                registry.mark_active_flow, model_id=model["id"], by=by, action=action,
                processes={url: missed.get(url) for url in results})
            log.info("model %s %s by %s on %d of %d Rasa processes", model["id"],
                     "rolled back to" if rollback else "activated", by, len(loaded),
                     len(self.processes))
            for url in missed:
                log.warning("Rasa process %s missed model %s: %s", url, model["id"],
                            results[url])
        row["processes"] = await self.db.run(registry.processes, urls=self.urls)
        return row

    async def check(self) -> int:
        """Load the registry's active model into every process whose ``/status`` names another
        one (once per cluster: skipped while another replica holds the lease). Returns how many
        processes were given the model."""
        if not self.processes:
            return 0
        if await self.db.run(_active_snapshot) is None:
            return 0
        async with self._lock:
            try:
                async with self._exclusive(wait_s=0):
                    return await self._bring_up_to_date()
            except Busy:
                return 0

    async def _bring_up_to_date(self) -> int:
        # Read again under the lease: an activation may have finished a moment ago.
        model = await self.db.run(_active_snapshot)
        if model is None:
            return 0
        wanted = Path(model["file"]).name
        statuses = await asyncio.gather(*(p.status() for p in self.processes),
                                        return_exceptions=True)
        behind = []
        recorded: dict[str, tuple[int | None, str | None]] = {}
        served: dict[str, str] = {}  # URL -> the file a process behind names
        for process, status in zip(self.processes, statuses, strict=True):
            if isinstance(status, RasaError) and status.kind == "unreachable":
                recorded[process.base_url] = (None, f"unreachable ({status})")
            elif isinstance(status, BaseException):
                behind.append(process)  # up, but no model it can tell (still loading one?)
            elif Path(str(status.get("model_file") or "")).name == wanted:
                recorded[process.base_url] = (model["id"], None)
            else:
                behind.append(process)
                served[process.base_url] = Path(str(status.get("model_file") or "")).name
        if served:  # what a process behind serves, when the registry knows that file
            known = await self.db.run(registry.ids_by_file_name, names=set(served.values()))
            for url, name in served.items():
                recorded[url] = (known.get(name), f"serves {name}, not #{model['id']} "
                                                  f"{model['name']}")
        now = time.monotonic()
        for process in list(behind):
            refused_at = self._refused.get((process.base_url, model["id"]))
            if refused_at is not None and now - refused_at < REFUSED_RETRY_S:
                behind.remove(process)  # its error stays recorded from the last attempt
        brought = 0
        if behind:
            results = await self._load(behind, model["file"])
            for url, error in results.items():
                if error and error.kind == REFUSED:
                    self._refused[(url, model["id"])] = now
                if error:
                    recorded[url] = (None, f"did not load #{model['id']} {model['name']} "
                                           f"({error})")
                    log.warning("Rasa process %s still misses model %s: %s", url, model["id"],
                                error)
                else:
                    recorded[url] = (model["id"], None)
                    brought += 1
                    log.info("Rasa process %s brought up to model %s", url, model["id"])
        await self.db.run(registry.record_processes_flow, results=recorded)
        return brought

    async def _give_back(self, previous: dict[str, Any] | None, loaded: list[str],
                         model: dict[str, Any], results: dict[str, RasaError | None]) -> None:
        """An activation that failed somewhere: the processes that loaded the model serve the
        previous one again, and every process's state is recorded."""
        recorded: dict[str, tuple[int | None, str | None]] = {
            url: (None, f"did not load #{model['id']} {model['name']} ({error})")
            for url, error in results.items() if error is not None}
        if loaded and previous is not None:
            back = await self._load([p for p in self.processes if p.base_url in loaded],
                                    previous["file"])
            for url, error in back.items():
                recorded[url] = ((model["id"], f"serves #{model['id']}, which was not "
                                                f"activated; giving #{previous['id']} back "
                                                f"failed ({error})")
                                 if error else (previous["id"], None))
        await self.db.run(registry.record_processes_flow, results=recorded)

    async def _load(self, processes: list[RasaClient],
                    model_file: str) -> dict[str, RasaError | None]:
        """Every process loads ``model_file`` at once; URL -> None (loaded) or the error."""
        async def one(process: RasaClient) -> RasaError | None:
            try:
                await process.load_model(model_file, timeout_s=self.load_timeout_s)
            except RasaError as exc:
                return exc
            return None

        errors = await asyncio.gather(*(one(p) for p in processes))
        return {p.base_url: e for p, e in zip(processes, errors, strict=True)}

    @asynccontextmanager
    async def _exclusive(self, *, wait_s: float) -> AsyncIterator[None]:
        """Hold the cluster's ``rasa-models`` lease for the block (waiting up to ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        while not await self.db.run(_claim_flow, member=self.member):
            if time.monotonic() >= deadline:
                raise Busy("another replica is loading a model into Rasa; try again shortly")
            await asyncio.sleep(LEASE_POLL_S)
        try:
            yield
        finally:
            await self.db.run(_release_flow, member=self.member)

    # -- the periodic check ---------------------------------------------------------------------

    async def start(self) -> None:
        if self.check_s > 0 and self.processes:
            if self.replica is not None:
                self.replica.want(RASA_MODEL_CHECK_LEASE)  # one replica checks, not all
            self._task = asyncio.create_task(self._run(), name="rasa-model-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            if self.replica is not None and not self.replica.holds(RASA_MODEL_CHECK_LEASE):
                continue
            try:
                await self.check()
            except Exception:  # the database or a process may be back next time
                log.exception("checking the Rasa processes' model failed")


def _snapshot(model) -> dict[str, Any]:
    return {"id": model.id, "name": model.name, "file": str(registry.file_of(model))}


def _active_snapshot(session) -> dict[str, Any] | None:
    model = registry.active(session)
    return _snapshot(model) if model is not None else None


def _claim_flow(session, *, member: Member) -> bool:
    taken = cluster.claim_lease(session, name=RASA_MODELS_LEASE, member=member)
    session.commit()
    return taken


def _release_flow(session, *, member: Member) -> None:
    cluster.release_lease(session, name=RASA_MODELS_LEASE, member=member)
    session.commit()
