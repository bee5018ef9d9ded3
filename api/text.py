"""Text the database can store: no NUL character (PostgreSQL refuses it in text and JSON
columns) and no lone surrogate (not encodable as UTF-8, so SQLite refuses it too). Checked where
text comes in, so bad input is a clear 422 on every backend instead of a database error."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored (None when it can)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def first_unstorable(value: Any, where: str = "") -> str | None:
    """The first string in a JSON value (keys included) that cannot be stored, as
    ``"<where> <why>"``; None when every string can."""
    if isinstance(value, str):
        why = unstorable(value)
        return f"{where or 'value'} {why}" if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            found = first_unstorable(str(key), f"{name} (key)") or first_unstorable(item, name)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable(item, f"{where}[{index}]")
            if found:
                return found
    return None


def _storable(value: str) -> str:
    why = unstorable(value)
    if why:
        raise ValueError(f"text {why}")
    return value


# A request field or query parameter that is stored or compared in the database.
StorableStr = Annotated[str, AfterValidator(_storable)]
