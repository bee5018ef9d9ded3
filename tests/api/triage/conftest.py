"""Triage fixtures: the trained model of models/triage (`make train-triage`), loaded once.

Every clone trains the same model from the data the repository carries, so these tests check the
model the product serves; a missing model is a failure that says how to train it.
"""

from __future__ import annotations

import pytest

from api.triage.engine import Triage
from tests.support.triage import load_trained_triage


@pytest.fixture(scope="session")
def triage() -> Triage:
    return load_trained_triage()
