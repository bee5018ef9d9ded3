"""The training job: validate the data, train a candidate, score it and the active model, judge.

One job at a time in the cluster, in the switchboard process that started it, as subprocesses in
the bot environment (niced, so the live bot keeps answering). The job never touches the served
model: a failed job leaves it as it was and says why; a finished one leaves a scored candidate in
the registry for an operator to activate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.cluster.replica import Replica
from api.db import Database
from api.registry import gate as gates
from api.registry import service as registry
from api.review import service as review
from api.settings import REPO_ROOT, Settings
from api.training import service
from api.training.models import JobStatus
from scripts import bot_model

log = logging.getLogger(__name__)
_EPOCHS = re.compile(r"Epochs:\s+(\d+)%")
_EVALUATE = re.compile(r"^progress evaluate (\d+) (\S+)")
# Progress-bar redraws (tqdm): noise in the log an operator reads when a job failed.
_PROGRESS_BAR = re.compile(r"\d+it \[|%\||it/s\]|s/it\]")
# Share of the progress bar per phase: validating, training, evaluating both models.
PHASES = {"validating": (0, 5), "training": (5, 75), "evaluating": (75, 100)}


class JobFailed(RuntimeError):
    pass


class TrainingRunner:
    """Runs :class:`api.training.models.TrainingJob` rows; ``submit`` refuses a second one."""

    def __init__(self, db: Database, settings: Settings, replica: Replica | None = None) -> None:
        self.db, self.settings = db, settings
        # Whose jobs these are: a job whose replica died is failed by the others.
        self.replica = replica
        self._task: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._submitting = asyncio.Lock()

    async def start(self) -> None:
        """Fail the jobs nobody can finish: this replica's previous run's, and those of
        replicas that died (now, and every CLUSTER_STALE_S while running)."""
        if self.replica is None:
            return
        await self._sweep(own=True)
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def _sweep(self, *, own: bool) -> None:
        ids = await self.db.run(service.fail_orphaned_flow, member=self.replica.member, own=own)
        if ids:
            log.warning("training jobs %s were interrupted: their switchboard stopped", ids)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.replica.member.stale_s)
            try:
                await self._sweep(own=False)
            except Exception:  # the next round tries again
                log.exception("training job sweep failed")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._task is not None and not self._task.done():
            self._kill()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def submit(self, *, by: str) -> int:
        async with self._submitting:  # two clicks at once must not both start a job
            if self._task is not None and not self._task.done():
                raise service.Busy("a training job is already running")
            job_id = await self.db.run(service.create_flow, by=by,
                                       member=self.replica.member if self.replica else None)
            self._task = asyncio.create_task(self._run(job_id, by),
                                             name=f"training-job-{job_id}")
        return job_id

    async def wait(self) -> None:
        """For tests and the CLI: until the current job has finished."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the job ---------------------------------------------------------------------------------
    async def _run(self, job_id: int, by: str) -> None:
        tail: deque[str] = deque(maxlen=40)
        try:
            project = self.settings.bot_project_dir
            data_hash = bot_model.data_hash(project)
            await self._update(job_id, data_hash=data_hash)
            await self._step(job_id, "validating", tail, [
                *self._rasa(), "data", "validate", "--fail-on-warnings",
                "--domain", "domain.yml", "--data", *self._data_dirs()])
            self.settings.candidates_dir.mkdir(parents=True, exist_ok=True)
            name = f"candidate-{job_id}-{data_hash}"
            await self._step(job_id, "training", tail, [
                *self._rasa(), "train", "--config", str(self.settings.train_config),
                "--domain", "domain.yml", "--data", *self._data_dirs(),
                "--out", str(self.settings.candidates_dir), "--fixed-model-name", name])
            path = self.settings.candidates_dir / f"{name}.tar.gz"
            if not path.is_file():
                raise JobFailed(f"training finished without writing {path.name}")
            model_id = await self.db.run(_register, path=path, by=by, data_hash=data_hash)
            await self._update(job_id, model_id=model_id)
            await self.evaluate(model_id, by=by, job_id=job_id, tail=tail)
            await self._update(job_id, status=JobStatus.succeeded, phase="done", progress=100.0,
                               log_tail="\n".join(tail))
        except JobFailed as exc:
            log.warning("training job %s failed: %s", job_id, exc)
            await self._update(job_id, status=JobStatus.failed, error=str(exc),
                               log_tail="\n".join(tail))
        except asyncio.CancelledError:
            await self._update(job_id, status=JobStatus.failed,
                               error="stopped: the switchboard shut down", log_tail="\n".join(tail))
            raise
        except Exception as exc:  # a bug must still end the job visibly
            log.exception("training job %s broke", job_id)
            await self._update(job_id, status=JobStatus.failed,
                               error=f"internal error: {type(exc).__name__}: {exc}",
                               log_tail="\n".join(tail))

    async def evaluate(self, model_id: int, *, by: str, job_id: int | None = None,
                       tail: deque[str] | None = None) -> dict[str, Any]:
        """Score ``model_id`` and the active model side by side, judge, record. Returns the
        model's registry row."""
        tail = tail if tail is not None else deque(maxlen=40)
        target, active = await self.db.run(_pair, model_id=model_id)
        out = self.settings.evaluations_dir / f"model-{model_id}"
        out.mkdir(parents=True, exist_ok=True)
        probes = await self.db.run(review.annotated_messages)
        (out / "messages.json").write_text(json.dumps(probes))
        reports: dict[str, dict[str, Any]] = {}
        sides = [("candidate", target)] + ([("active", active)] if active else [])
        for index, (side, model) in enumerate(sides):
            span = (index / len(sides), (index + 1) / len(sides))
            await self._step(job_id, "evaluating", tail, [
                str(self.settings.bot_venv / "bin" / "python"),
                str(REPO_ROOT / "scripts" / "evaluate_model.py"), "--model", model["file"],
                "--out", str(out / side), "--nlu", str(self._tests("nlu", "test_nlu.yml")),
                "--oos", str(self._tests("nlu", "out_of_scope.yml")),
                "--stories", str(self._tests("conversations")),
                "--messages", str(out / "messages.json"), "--progress"], span=span)
            reports[side] = json.loads((out / side / "report.json").read_text())
        if active:
            await self._step(None, "evaluating", tail, [
                str(self.settings.bot_venv / "bin" / "python"),
                str(REPO_ROOT / "scripts" / "compare_models.py"),
                "--active", str(out / "active" / "report.json"),
                "--candidate", str(out / "candidate" / "report.json"), "--out", str(out)])
        summary = gates.summarise(reports["candidate"])
        active_summary = gates.summarise(reports["active"]) if active else None
        verdict = gates.judge(summary, active_summary, gates.GatePolicy(
            max_macro_f1_drop=self.settings.gate_max_macro_f1_drop,
            min_intent_f1=self.settings.gate_min_intent_f1))
        return await self.db.run(_record, model_id=model_id, active_id=active["id"] if active
                                 else None, summary=summary, active_summary=active_summary,
                                 verdict=verdict.as_dict(), out=out, by=by)

    # -- subprocesses ----------------------------------------------------------------------------
    def _rasa(self) -> list[str]:
        return [str(self.settings.bot_venv / "bin" / "rasa")]

    def _data_dirs(self) -> list[str]:
        return [str(p.relative_to(self.settings.bot_project_dir))
                for p in bot_model.rasa_data_dirs(self.settings.bot_project_dir)]

    def _tests(self, *parts: str) -> Path:
        return REPO_ROOT / "tests" / Path(*parts)

    async def _step(self, job_id: int | None, phase: str, tail: deque[str], command: list[str],
                    span: tuple[float, float] = (0.0, 1.0)) -> None:
        """Run one subprocess, turning its progress output into the job's progress."""
        low, high = PHASES[phase]
        begin = low + (high - low) * span[0]
        width = (high - low) * (span[1] - span[0])
        if job_id is not None:
            await self._update(job_id, phase=phase, progress=begin)
        self._process = await asyncio.create_subprocess_exec(
            *command, cwd=self.settings.bot_project_dir, env=self.subprocess_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, preexec_fn=_lower_priority)
        last_update = 0.0

        async def report(fraction: float) -> None:
            nonlocal last_update
            if job_id is None or time.monotonic() - last_update < 1.0:
                return
            last_update = time.monotonic()
            await self._update(job_id, progress=round(begin + width * fraction, 1))

        await _read_lines(self._process.stdout, tail, report)
        code = await self._process.wait()
        self._process = None
        if code != 0:
            what = {"validating": "the training data did not validate",
                    "training": "training failed", "evaluating": "evaluation failed"}[phase]
            raise JobFailed(f"{what} (exit {code}); see the log below")

    def subprocess_env(self) -> dict[str, str]:
        """What training and evaluation see of the switchboard's environment: no secrets."""
        return bot_model.training_env(self.settings.bot_venv,
                                      project=self.settings.bot_project_dir)

    def _kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)

    async def _update(self, job_id: int | None, **fields: Any) -> None:
        if job_id is not None:
            await self.db.run(service.update_flow, job_id=job_id, **fields)


async def _read_lines(stream: asyncio.StreamReader, tail: deque[str],
                      report: Callable[[float], Any]) -> None:
    """Lines end with \\n or \\r (progress bars redraw with \\r)."""
    buffer = b""
    while chunk := await stream.read(4096):
        buffer += chunk
        *lines, buffer = re.split(rb"[\r\n]", buffer)
        for raw in lines:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            if match := _EPOCHS.search(line):
                await report(int(match.group(1)) / 100)
                continue
            if match := _EVALUATE.match(line):
                await report(int(match.group(1)) / 100)
                continue
            if not _PROGRESS_BAR.search(line):
                tail.append(line[:500])


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)


# -- database units of work -----------------------------------------------------------------------
def _register(session, *, path: Path, by: str, data_hash: str) -> int:
    model = registry.register(session, path=path, source="console", by=by, data_hash=data_hash)
    session.commit()
    return model.id


def _pair(session, *, model_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    model = registry.get(session, model_id)
    active = registry.active(session)
    as_dict = lambda m: {"id": m.id, "file": str(registry.file_of(m))}  # noqa: E731
    return as_dict(model), (as_dict(active) if active and active.id != model.id else None)


def _record(session, *, model_id: int, active_id: int | None, summary: dict[str, Any],
            active_summary: dict[str, Any] | None, verdict: dict[str, Any], out: Path,
            by: str) -> dict[str, Any]:
    model = registry.get(session, model_id)
    active = registry.get(session, active_id) if active_id else None
    metrics = {**summary, "active": active_summary}
    registry.record_evaluation(session, model, metrics=metrics, gate=verdict,
                               compared_with=active, evaluation_dir=out, by=by)
    session.commit()
    return registry.row(model)
