"""The action server's one source of facts, texts and time.

Facts and texts are re-read when their files change, so an edited fact sheet is live at the next
message without restarting the action server. The clock is injectable (tests freeze it).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from .answers import Answers
from .replies import Context
from .settings import BotSettings
from .venue import Venue

T = TypeVar("T")
Clock = Callable[[], dt.datetime]


class _Reloading(Generic[T]):
    """A value loaded from files, loaded again when one of their mtimes changes (a missing
    optional file counts as a state too, so creating it is noticed)."""

    def __init__(self, paths: tuple[Path, ...], loader: Callable[..., T]) -> None:
        self._paths, self._loader = paths, loader
        self._value: T | None = None
        self._mtimes: tuple[float | None, ...] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        mtimes = tuple(p.stat().st_mtime if p.exists() else None for p in self._paths)
        with self._lock:
            if self._value is None or mtimes != self._mtimes:
                self._value, self._mtimes = self._loader(*self._paths), mtimes
            return self._value


class Desk:
    def __init__(self, settings: BotSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self._venue = _Reloading((settings.venue_file,), Venue.load)
        self._answers = _Reloading((settings.answers_file, settings.reviewed_answers_file),
                                   Answers.load_with_reviewed)
        self._clock = clock or self._default_clock

    def _default_clock(self) -> dt.datetime:
        if self.settings.frozen_now is not None:
            return self.settings.frozen_now
        return dt.datetime.now(self.settings.timezone)

    @property
    def venue(self) -> Venue:
        return self._venue.get()

    @property
    def answers(self) -> Answers:
        return self._answers.get()

    def now(self) -> dt.datetime:
        return self._clock().astimezone(self.settings.timezone)

    def context(self, language: str = "en") -> Context:
        return Context(venue=self.venue, answers=self.answers, now=self.now(), language=language)


_default: Desk | None = None


def default_desk() -> Desk:
    """The process-wide desk, built on first use from the environment (never at import)."""
    global _default
    if _default is None:
        _default = Desk(BotSettings.from_env())
    return _default
