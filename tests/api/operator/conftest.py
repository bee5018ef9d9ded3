"""Fixtures for the operators' loop: a temporary copy of the Rasa project (tests never write
into the tracked data), a small training config, and settings pointing at them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
# What `rasa train` and the action server read; the copy gets exactly these.
PROJECT_FILES = ("config.yml", "domain.yml", "credentials.yml", "endpoints.yml")
PROJECT_DIRS = ("data", "bot")  # bot/: the custom NLU component config.yml names
SMALL_EPOCHS = 40  # enough for this data to be usable, a fraction of config.yml's training time


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, target / name,
                        ignore=shutil.ignore_patterns("*.reviewed.yml", "reviewed.yml",
                                                      "reviewed.tsv"))
    return target


def small_config(project: Path) -> Path:
    """config.yml with fewer DIET epochs (same pipeline, same seed)."""
    config = yaml.safe_load((project / "config.yml").read_text())
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = SMALL_EPOCHS
    path = project / "config.small.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def bot_project(tmp_path) -> Path:
    """A private copy of the Rasa project (config, domain, data)."""
    return copy_project(tmp_path / "project")


@pytest.fixture
def operator_settings(make_settings, bot_project, tmp_path):
    """Settings whose review/training/registry work happens in the project copy."""

    def _make(**overrides):
        values = dict(BOT_PROJECT_DIR=str(bot_project), MODELS_DIR=str(tmp_path / "models"))
        values.update(overrides)
        return make_settings(**values)

    return _make
