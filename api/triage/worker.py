"""The semantic layer in a process of its own.

The relay reads a message's meaning while Rasa answers. In a worker thread that still costs the
fan's turn about a millisecond: the encoder's tokenizer is pure Python and holds the GIL just when
the event loop wants to handle Rasa's answer. A single worker process has its own interpreter, so
the switchboard's loop never waits for it. The process loads the same model files as the
switchboard's own copy (``SemanticModel.model_dir``), so verdicts are identical; if it is not
ready yet, or breaks, the caller falls back to the in-process model.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from api.triage import windows
from api.triage.semantic import SemanticModel, SemanticVerdict

log = logging.getLogger(__name__)

_model: SemanticModel | None = None  # the worker process's own copy


def _load(model_dir: str) -> None:
    global _model
    _model = SemanticModel.load(Path(model_dir))


def _classify(text: str) -> SemanticVerdict:
    return windows.read(_model, text)


class MeaningWorker:
    """One spawned process holding the semantic model; ``classify`` awaits its verdict."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._pool: ProcessPoolExecutor | None = None
        self.ready = False

    async def start(self) -> None:
        """Spawn the process and load the model there (a few seconds); until then, and if it
        fails, ``ready`` stays False and callers use the in-process model."""
        # spawn, not fork: the parent has an event loop, threads and database connections.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_load, initargs=(str(self.model_dir),),
        )
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, _classify, "ready?")
        except Exception:
            log.exception("semantic worker process failed to start; reading in-process")
            self.close()
            return
        self.ready = True
        log.info("semantic layer runs in its own process")

    async def classify(self, text: str) -> SemanticVerdict:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, _classify, text)
        except BrokenProcessPool:
            # The process died (killed, out of memory): stop using it; the caller reads
            # in-process from now on rather than lose a message's verdict.
            log.error("semantic worker process died; reading in-process from now on")
            self.close()
            raise

    def close(self) -> None:
        self.ready = False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
