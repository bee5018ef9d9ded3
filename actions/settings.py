"""The action server's settings: one frozen object, read from the environment when asked.

Rasa pins pydantic 1, so this is a plain dataclass (the switchboard uses pydantic-settings).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BotSettings:
    venue_file: Path
    answers_file: Path
    # Answers of intents operators created in the console (may not exist yet).
    reviewed_answers_file: Path
    timezone: ZoneInfo
    frozen_now: dt.datetime | None  # demos and tests: pretend it is this moment

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BotSettings:
        env = os.environ if environ is None else environ
        timezone = ZoneInfo(env.get("VENUE_TIMEZONE", "Europe/Madrid"))
        frozen = env.get("BOT_FROZEN_NOW")
        frozen_now = None
        if frozen:
            frozen_now = dt.datetime.fromisoformat(frozen)
            if frozen_now.tzinfo is None:
                frozen_now = frozen_now.replace(tzinfo=timezone)
        return cls(
            venue_file=Path(env.get("VENUE_FILE", PROJECT_ROOT / "data" / "venue.yml")),
            answers_file=Path(env.get("ANSWERS_FILE", PROJECT_ROOT / "data" / "answers.yml")),
            reviewed_answers_file=Path(env.get(
                "REVIEWED_ANSWERS_FILE", PROJECT_ROOT / "data" / "answers.reviewed.yml")),
            timezone=timezone,
            frozen_now=frozen_now,
        )
