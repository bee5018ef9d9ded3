"""The review queue end to end: real bot turns through the switchboard fill it; operators (and
only operators) annotate, and the annotation lands in the project copy's Rasa data."""

from __future__ import annotations

import pytest
import yaml

from api.conversations.models import Message
from tests.api.conftest import _harness, login, run_db

pytestmark = pytest.mark.rasa

REST = "/webhooks/rest/webhook"
UNCLEAR = "can you recommend a good sushi place in the old town?"


@pytest.fixture
async def h(bot_settings, bot_project, tmp_path, triage_engine):
    settings = bot_settings(BOT_PROJECT_DIR=str(bot_project), MODELS_DIR=str(tmp_path / "models"))
    async for harness in _harness(settings, triage=triage_engine, timers=False):
        yield harness


async def say(h, sender: str, text: str) -> list[dict]:
    r = await h.client.post(REST, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def fan_message(h, text: str) -> Message:
    return run_db(h.services, lambda s: s.query(Message).filter(Message.text == text)
                  .order_by(Message.id.desc()).first())


async def test_queue_fills_from_real_turns_and_groups_duplicates(h):
    await say(h, "fan-sure", "what time do you open?")  # the bot is sure: not queued
    await say(h, "fan-a", UNCLEAR)
    await say(h, "fan-b", "Can you recommend a good SUSHI place in the old town??")
    # Two misses in a row: triage hands the thread off, the bot-handled messages are queued
    # as a complex handoff too.
    await say(h, "fan-c", "the moon is made of cheese, discuss")
    await say(h, "fan-c", "what is the airspeed velocity of an unladen swallow")
    await say(h, "fan-d", "do you guys have a kebab stand inside")
    flagged = fan_message(h, "do you guys have a kebab stand inside")
    laura = await login(h.client, "laura")
    r = await h.client.post(
        f"/api/v1/conversations/{flagged.conversation_id}/messages/{flagged.id}/flag",
        json={"reason": "food question"}, headers=laura)
    assert r.status_code == 201, r.text

    sam = await login(h.client, "sam")
    r = await h.client.get("/api/v1/review/items", params={"status": "all"}, headers=sam)
    assert r.status_code == 200, r.text
    listing = r.json()
    items = {i["text"]: i for i in listing["items"]}
    assert "what time do you open?" not in items
    sushi = next(i for t, i in items.items() if "sushi" in t.lower())
    assert sushi["occurrences"] == 2, "same question, different case/punctuation: one row"
    assert set(sushi["reasons"]) & {"fallback", "low_confidence"}
    assert sushi["ranking"] and sushi["predicted_intent"]
    kebab = items["do you guys have a kebab stand inside"]
    assert "flagged" in kebab["reasons"]
    assert any("complex_handoff" in i["reasons"] for i in items.values()), items
    # Filter, search and the counts.
    r = await h.client.get("/api/v1/review/items", params={"reason": "flagged"}, headers=sam)
    assert [i["text"] for i in r.json()["items"]] == ["do you guys have a kebab stand inside"]
    r = await h.client.get("/api/v1/review/items", params={"q": "sushi"}, headers=sam)
    assert r.json()["total"] == 1
    # Detail: the conversation around it.
    r = await h.client.get(f"/api/v1/review/items/{sushi['id']}", headers=sam)
    detail = r.json()
    assert any(m["this"] for s in detail["sightings"] for m in s["context"])
    assert {m["sender"] for s in detail["sightings"] for m in s["context"]} >= {"fan", "bot"}
    # Collecting again changes nothing (idempotent).
    again = await h.client.get("/api/v1/review/items", params={"status": "all"}, headers=sam)
    assert [(i["id"], i["occurrences"], i["reasons"]) for i in again.json()["items"]] == \
        [(i["id"], i["occurrences"], i["reasons"]) for i in listing["items"]]


async def test_only_operators(h):
    tom = await login(h.client, "tom")  # staff
    noor = await login(h.client, "noor")  # supervisor
    for headers in (tom, noor):
        for method, url in (("GET", "/api/v1/review/items"), ("GET", "/api/v1/models"),
                            ("POST", "/api/v1/training/jobs"), ("POST", "/api/v1/models/rollback"),
                            ("POST", "/api/v1/review/items/1/annotate")):
            r = await h.client.request(method, url, headers=headers,
                                       json={} if method == "POST" else None)
            assert r.status_code == 403, (url, r.status_code, r.text)
    r = await h.client.get("/api/v1/review/items")
    assert r.status_code == 401
    r = await h.client.get("/operator", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/inbox/login?next=/operator"


async def test_annotate_redacts_personal_data_and_writes_rasa_data(h, bot_project):
    text = "my email is ana.lopez@example.com, can I still get a refund for the opening?"
    await say(h, "fan-pii", text)
    await say(h, "fan-x", "is there a chill out zone with sofas")
    sam = await login(h.client, "sam")
    items = (await h.client.get("/api/v1/review/items", headers=sam)).json()["items"]
    by_text = {i["text"]: i for i in items}
    pii_item = by_text.get(text)
    if pii_item is None:  # the bot was sure: flag it so it is queued anyway
        message = fan_message(h, text)
        laura = await login(h.client, "laura")
        await h.client.post(f"/api/v1/conversations/{message.conversation_id}/messages/"
                            f"{message.id}/flag", json={"reason": "x"}, headers=laura)
        items = (await h.client.get("/api/v1/review/items", headers=sam)).json()["items"]
        pii_item = {i["text"]: i for i in items}[text]
    assert "email" in pii_item["personal_data"]

    url = f"/api/v1/review/items/{pii_item['id']}/annotate"
    r = await h.client.post(url, json={"intent": "refunds"}, headers=sam)
    assert r.status_code == 422
    assert [p["kind"] for p in r.json()["detail"]["personal_data"]] == ["email"]
    detail = (await h.client.get(f"/api/v1/review/items/{pii_item['id']}", headers=sam)).json()
    assert "<email>" in detail["suggested_text"] and "ana.lopez" not in detail["suggested_text"]
    r = await h.client.post(url, json={"intent": "refunds", "text": detail["suggested_text"]},
                            headers=sam)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "annotated"

    reviewed = yaml.safe_load((bot_project / "data/nlu/reviewed.yml").read_text())
    [block] = reviewed["nlu"]
    assert block["intent"] == "refunds"
    [example] = block["examples"]
    assert "ana.lopez" not in example["text"] and example["metadata"]["added_by"] == "sam"

    # A new intent with the operator's answer (facts as placeholders).
    chill = by_text["is there a chill out zone with sofas"]
    url = f"/api/v1/review/items/{chill['id']}/annotate"
    r = await h.client.post(url, json={"new_intent": {
        "name": "chill_out_zone", "answer_en": "Yes — the terrace at {venue_name} has sofas.",
        "answer_es": None}}, headers=sam)
    assert r.status_code == 200, r.text
    domain = yaml.safe_load((bot_project / "domain.yml").read_text())
    assert domain["intents"][-1] == "chill_out_zone"
    rules = yaml.safe_load((bot_project / "data/rules/reviewed.yml").read_text())
    assert rules["rules"][0]["steps"] == [{"intent": "chill_out_zone"},
                                          {"action": "action_answer"}]
    answers = yaml.safe_load((bot_project / "data/answers.reviewed.yml").read_text())
    assert answers["answers"]["chill_out_zone"]["en"] == [
        "Yes — the terrace at {venue_name} has sofas."]
    # Unknown placeholder, taken name, conflicting example: clear refusals, nothing written.
    r = await h.client.post(url, json={"new_intent": {"name": "chill_out_zone",
                                                      "answer_en": "x"}}, headers=sam)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    before = (bot_project / "domain.yml").read_text()
    r = await h.client.post(url, json={"new_intent": {"name": "sofa_talk",
                                                      "answer_en": "{no_such_fact}"}}, headers=sam)
    assert r.status_code == 409 and "no_such_fact" in r.json()["detail"]
    assert (bot_project / "domain.yml").read_text() == before
    r = await h.client.post(url, json={"intent": "thanks", "text": "Hello"}, headers=sam)
    assert r.status_code == 409 and "'greet'" in r.json()["detail"]
    reviewed = yaml.safe_load((bot_project / "data/nlu/reviewed.yml").read_text())
    assert {b["intent"] for b in reviewed["nlu"]} == {"refunds", "chill_out_zone"}

    # Who changed what, and the export (personal data never leaves).
    changes = (await h.client.get("/api/v1/review/changes", headers=sam)).json()
    assert {(c["action"], c["intent"], c["by"]) for c in changes} >= {
        ("add_example", "refunds", "sam"), ("new_intent", "chill_out_zone", "sam"),
        ("add_example", "chill_out_zone", "sam")}
    exported = (await h.client.get("/api/v1/review/export", headers=sam)).json()
    assert all("ana.lopez" not in (row["text"] or "") for row in exported)

    # Reopen: the example leaves the data again; ignore in bulk.
    r = await h.client.post("/api/v1/review/items/bulk", json={
        "ids": [pii_item["id"]], "action": "reopen"}, headers=sam)
    assert r.json()["changed"] == [pii_item["id"]]
    reviewed = yaml.safe_load((bot_project / "data/nlu/reviewed.yml").read_text())
    assert [b["intent"] for b in reviewed["nlu"]] == ["chill_out_zone"]
    r = await h.client.post("/api/v1/review/items/bulk", json={
        "ids": [pii_item["id"]], "action": "ignore"}, headers=sam)
    assert r.json()["changed"] == [pii_item["id"]]
    r = await h.client.post("/api/v1/review/items/bulk", json={"ids": [1], "action": "annotate"},
                            headers=sam)
    assert r.status_code == 422
