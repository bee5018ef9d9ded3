"""Triage of fan messages: safety patterns, negative emotion and its trajectory, requests the bot
must not own, the fan's language -> a handoff Decision. See docs/triage.md.

Importing this package loads nothing (not even spaCy: the CLIs pin thread counts first);
``Triage.load`` loads the pipelines and the model, once, at startup.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Assessment", "Decision", "FanTurn", "Policy", "Priority", "Triage", "Trigger"]


def __getattr__(name: str) -> Any:
    if name in ("Policy", "Triage"):
        from api.triage import engine

        return getattr(engine, name)
    if name in __all__:
        from api.triage import schemas

        return getattr(schemas, name)
    raise AttributeError(name)
