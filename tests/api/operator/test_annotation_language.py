"""An annotated example carries its language: the review item's decided language (the fan
message's, from the switchboard's language decision) goes into the example's metadata in the
project copy's data/nlu/reviewed.yml (``metadata: {review_item, added_by, added_at, language}``),
so a Spanish or German fan's wording is visibly added as that language's example. The fake Rasa
answers ("huh ..." is a message it did not understand, so it is queued); nothing here needs the
real bot."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from api.review.models import ReviewItem
from tests.api.conftest import _harness, login, run_db

REST = "/webhooks/rest/webhook"
# What each fan wrote (the fake bot misses "huh ..."), and the wording the operator adds.
MISSED = {
    "es": ("huh, ¿a qué hora abrís las puertas esta noche?",
           "¿a qué hora abrís las puertas esta noche?"),
    "de": ("huh, wann macht ihr heute Abend die Türen auf?",
           "wann macht ihr heute Abend die Türen auf?"),
    "en": ("huh, what time do the doors open tonight?",
           "what time do the doors open tonight, roughly?"),
}


@pytest.fixture
async def h(operator_settings, triage_engine, clock):
    async for harness in _harness(operator_settings(), triage=triage_engine, clock=clock,
                                  timers=False):
        yield harness


async def queued(h, sam) -> dict[str, dict]:
    """Each fan's message from its own thread; the queue as Sam sees it, by text."""
    for language, (said, _) in MISSED.items():
        r = await h.client.post(REST, json={"sender": f"fan-{language}", "message": said})
        assert r.status_code == 200, r.text
    r = await h.client.get("/api/v1/review/items", params={"status": "all"}, headers=sam)
    assert r.status_code == 200, r.text
    return {i["text"]: i for i in r.json()["items"]}


def reviewed_examples(project) -> dict[str, dict]:
    data = yaml.safe_load((project / "data/nlu/reviewed.yml").read_text(encoding="utf-8"))
    return {example["text"]: {**example["metadata"], "intent": block["intent"]}
            for block in data["nlu"] for example in block["examples"]}


async def test_annotated_examples_carry_the_item_s_language(h, bot_project):
    sam = await login(h.client, "sam")
    items = await queued(h, sam)
    for language, (said, _) in MISSED.items():
        assert items[said]["language"] == language, items[said]

    for language, (said, wording) in MISSED.items():
        r = await h.client.post(f"/api/v1/review/items/{items[said]['id']}/annotate",
                                json={"intent": "opening_hours", "text": wording}, headers=sam)
        assert r.status_code == 200, r.text
        assert r.json()["language"] == language

    examples = reviewed_examples(bot_project)
    for language, (said, wording) in MISSED.items():
        metadata = examples[wording]
        assert set(metadata) == {"review_item", "added_by", "added_at", "language", "intent"}
        assert metadata["language"] == language
        assert metadata["review_item"] == items[said]["id"]
        assert metadata["added_by"] == "sam" and metadata["intent"] == "opening_hours"
        dt.datetime.fromisoformat(metadata["added_at"])
    # As written into the file: the language is a plain line of the example's metadata.
    text = (bot_project / "data/nlu/reviewed.yml").read_text(encoding="utf-8")
    assert "language: es" in text and "language: de" in text

    # Annotating again (a better wording) replaces the example and keeps the language.
    said = MISSED["es"][0]
    r = await h.client.post(f"/api/v1/review/items/{items[said]['id']}/annotate",
                            json={"intent": "opening_hours",
                                  "text": "¿a qué hora abrís hoy?"}, headers=sam)
    assert r.status_code == 200, r.text
    examples = reviewed_examples(bot_project)
    assert MISSED["es"][1] not in examples
    assert examples["¿a qué hora abrís hoy?"]["language"] == "es"


async def test_an_item_without_a_language_is_added_with_a_null_one(h, bot_project):
    """Items collected before messages had a decided language: the example says so (null)
    rather than guessing one."""
    sam = await login(h.client, "sam")
    items = await queued(h, sam)
    item_id = items[MISSED["de"][0]]["id"]

    def forget_language(session) -> None:
        session.get(ReviewItem, item_id).language = None
        session.commit()

    run_db(h.services, forget_language)
    r = await h.client.post(f"/api/v1/review/items/{item_id}/annotate",
                            json={"intent": "opening_hours", "text": MISSED["de"][1]},
                            headers=sam)
    assert r.status_code == 200, r.text
    metadata = reviewed_examples(bot_project)[MISSED["de"][1]]
    assert "language" in metadata and metadata["language"] is None
    assert metadata["review_item"] == item_id
