"""The semantic layer in its own process: the same verdicts as in-process, and a process that
dies costs no verdict (the handoff side reads in-process from then on)."""

from __future__ import annotations

import asyncio
import os
import signal

from api.triage.engine import Triage
from api.triage.worker import MeaningWorker

TEXTS = ("my friend is lying by the toilets and won't open her eyes",
         "what time do doors open tonight?",
         "mi abuela murió ayer y tenía entradas para el sábado")


async def test_the_worker_process_reads_what_the_switchboard_would(triage: Triage) -> None:
    worker = MeaningWorker(triage.semantic.model_dir)
    await worker.start()
    try:
        assert worker.ready
        for text in TEXTS:
            assert await worker.classify(text) == triage.meaning(text)
    finally:
        worker.close()


async def test_a_dead_worker_process_costs_no_verdict(make_settings, fake_rasa) -> None:
    from api.main import create_app
    from tests.support.triage import load_trained_triage

    triage = load_trained_triage()
    app = create_app(make_settings(TRIAGE_SEMANTIC_PROCESS=True), triage=triage, timers=False)
    async with app.router.lifespan_context(app):
        manager = app.state.services.handoff
        for _ in range(600):
            if manager.meaning_in_own_process:
                break
            await asyncio.sleep(0.1)
        assert manager.meaning_in_own_process
        expected = triage.meaning(TEXTS[0])
        assert await manager.meaning(TEXTS[0]) == expected
        for pid in list(manager._meaning_worker._pool._processes):  # noqa: SLF001 - kill it
            os.kill(pid, signal.SIGKILL)
        assert await manager.meaning(TEXTS[0]) == expected  # read in-process instead
        assert not manager.meaning_in_own_process
