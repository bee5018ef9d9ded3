"""Triage fixtures: one loaded Triage per session.

Uses the trained model in models/triage/ when present; otherwise trains a small bag-of-words
model from the project's own fan messages only (a few seconds), so tests never skip silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.triage.engine import DEFAULT_MODEL_DIR, Triage
from api.triage.train import META_FILE, TrainConfig, fan_files, routine_files, train


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if (DEFAULT_MODEL_DIR / META_FILE).is_file():
        yield DEFAULT_MODEL_DIR
        return
    out = tmp_path_factory.mktemp("triage") / "model"
    train(out, fan=fan_files(), goemotions=None, routine=routine_files(),
          cfg=TrainConfig(architecture="bow", epochs=10), quiet=True)
    yield out


@pytest.fixture(scope="session")
def triage(model_dir: Path) -> Triage:
    return Triage.load(model_dir)
