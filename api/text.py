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


def escaped(value: str) -> str:
    """``value`` as it can be shown in a response or a log: unstorable characters escaped."""
    return value.encode("unicode_escape").decode("ascii") if unstorable(value) else value


def renderable(value: Any) -> Any:
    """A JSON value (an error's echo of the input) with every string ``escaped``: a lone
    surrogate cannot be encoded into a response body at all."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {escaped(str(k)): renderable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [renderable(v) for v in value]
    return value


def first_unstorable(value: Any, where: str = "") -> str | None:
    """The first string in a JSON value (keys included) that cannot be stored, as
    ``"<where> <why>"`` (``where`` escaped); None when every string can."""
    if isinstance(value, str):
        why = unstorable(value)
        return f"{where or 'value'} {why}" if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            shown = escaped(str(key))
            name = f"{where}.{shown}" if where else shown
            found = (first_unstorable(str(key), f"{name} (key)")
                     or first_unstorable(item, name))
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
