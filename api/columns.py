"""Column helpers: enums stored as short strings (no native enum types to migrate), JSON."""

from __future__ import annotations

import enum

from sqlalchemy import JSON, Enum
from sqlalchemy.dialects.postgresql import JSONB

JSONType = JSON().with_variant(JSONB(), "postgresql")
# The largest id an INTEGER key holds on PostgreSQL: ids in requests are bounded by it (a larger
# number is a 422, not a database overflow error).
ID_MAX = 2**31 - 1


def enum_column(cls: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
