"""The trained triage the product serves, for tests (switchboard environment)."""

from __future__ import annotations

import pytest


def load_trained_triage():
    """models/triage as `make train-triage` leaves it; fails (never skips) when it is missing."""
    from api.triage.emotion import META_FILE
    from api.triage.engine import DEFAULT_MODEL_DIR, Triage

    if not (DEFAULT_MODEL_DIR / META_FILE).is_file():
        pytest.fail(f"no trained triage model in {DEFAULT_MODEL_DIR}: run `make train-triage`")
    return Triage.load(DEFAULT_MODEL_DIR)
