"""Fixtures for the bot's unit tests: a frozen desk, trackers and a dispatcher. No network."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actions.desk import Desk  # noqa: E402
from actions.settings import BotSettings  # noqa: E402

MADRID = ZoneInfo("Europe/Madrid")
# "Today" in these tests: the real off-season day the project was started on.
OFF_SEASON_NOW = dt.datetime(2026, 11, 26, 16, 0, tzinfo=MADRID)
# A Thursday in the season, at 02:00: still Wednesday's night.
IN_SEASON_NOW = dt.datetime(2027, 7, 15, 2, 0, tzinfo=MADRID)


def make_desk(now: dt.datetime, venue_file: Path | None = None) -> Desk:
    settings = BotSettings.from_env({})
    if venue_file is not None:
        settings = dataclasses.replace(settings, venue_file=venue_file)
    return Desk(settings, clock=lambda: now)


@pytest.fixture
def off_season_desk() -> Desk:
    return make_desk(OFF_SEASON_NOW)


@pytest.fixture
def in_season_desk() -> Desk:
    return make_desk(IN_SEASON_NOW)


def make_tracker(text: str, intent: str, *, entities: list[dict[str, Any]] | None = None,
                 slots: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                 history: list[dict[str, Any]] | None = None, active_loop: str | None = None):
    from rasa_sdk import Tracker

    parse = {"text": text, "intent": {"name": intent, "confidence": 0.9},
             "entities": entities or [], "intent_ranking": []}
    events = list(history or []) + [
        {"event": "user", "text": text, "parse_data": parse, "metadata": metadata or {}}
    ]
    return Tracker(
        sender_id="fan-1", slots=slots or {}, latest_message=parse, events=events,
        paused=False, followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def user_event(text: str, intent: str) -> dict[str, Any]:
    return {"event": "user", "text": text,
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": 0.3}}}
