"""Learning from staff: inbox flags "this should have come to a person" (with who) and "this did
not need a person" become review items (``triage_missed`` / ``triage_unneeded``); an operator's
"Add to triage data" writes ``label<TAB>lang<TAB>text`` into the project copy's
data/triage/semantic/reviewed.tsv (redacted, recorded, read by the semantic trainer). The fake
Rasa answers; nothing here needs the real bot."""

from __future__ import annotations

import pytest

from api.conversations.models import Message
from api.review import service
from api.review.triage_data import HEADER, REVIEWED_TSV
from api.triage.semantic_train import data_files, read_tsv
from tests.api.conftest import _harness, login, run_db

REST = "/webhooks/rest/webhook"
MISSED = "my mate is on the floor by the bar and his lips look blue"
UNNEEDED = "that drop killed me"  # in the hand-written none.tsv
PERSONAL = "My name is Ana Lopez and my dad passed away, can I move my ticket to next week"
BOT_ONLY = "where can I buy a poncho"


@pytest.fixture
async def h(operator_settings, triage_engine, clock):
    async for harness in _harness(operator_settings(), triage=triage_engine, clock=clock,
                                  timers=False):
        yield harness


async def fan_says(h, sender: str, text: str) -> Message:
    r = await h.client.post(REST, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return run_db(h.services, lambda s: s.query(Message).filter(Message.text == text)
                  .order_by(Message.id.desc()).first())


async def flag(h, headers, message: Message, **body) -> None:
    r = await h.client.post(f"/api/v1/conversations/{message.conversation_id}/messages/"
                            f"{message.id}/flag", json=body, headers=headers)
    assert r.status_code == 201, r.text


async def staff_flagged(h) -> dict[str, dict]:
    """Noor (a supervisor: she may flag any thread) marks four messages; the queue as Sam sees
    it, by text."""
    noor = await login(h.client, "noor")
    await flag(h, noor, await fan_says(h, "fan-a", MISSED), kind="needs_person", label="medical")
    await flag(h, noor, await fan_says(h, "fan-b", UNNEEDED), kind="no_person_needed")
    await flag(h, noor, await fan_says(h, "fan-c", PERSONAL), kind="needs_person",
               label="personal")
    await flag(h, noor, await fan_says(h, "fan-d", BOT_ONLY))
    sam = await login(h.client, "sam")
    r = await h.client.get("/api/v1/review/items", params={"status": "all"}, headers=sam)
    assert r.status_code == 200, r.text
    return {i["text"]: i for i in r.json()["items"]}


def tsv_lines(project) -> list[str]:
    path = project / REVIEWED_TSV
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


async def test_collector_turns_staff_flags_into_triage_reasons(h):
    items = await staff_flagged(h)
    missed, unneeded, bot_only = items[MISSED], items[UNNEEDED], items[BOT_ONLY]
    assert "triage_missed" in missed["reasons"] and "flagged" not in missed["reasons"]
    assert missed["staff_triage"] == ["medical"] and missed["triage_label"] is None
    assert "triage_unneeded" in unneeded["reasons"] and unneeded["staff_triage"] == ["none"]
    assert "flagged" in bot_only["reasons"] and bot_only["staff_triage"] == []
    assert not {"triage_missed", "triage_unneeded"} & set(bot_only["reasons"])
    sam = await login(h.client, "sam")
    r = await h.client.get("/api/v1/review/items", params={"reason": "triage_missed"},
                           headers=sam)
    assert sorted(i["text"] for i in r.json()["items"]) == sorted([MISSED, PERSONAL])
    detail = (await h.client.get(f"/api/v1/review/items/{missed['id']}", headers=sam)).json()
    assert detail["staff_triage"] == ["medical"]
    assert [s["note"] for s in detail["sightings"]] == [
        "should have come to a person: medical emergency"]
    # Idempotent; an ignored item comes back when staff mark the same question again.
    again = (await h.client.get("/api/v1/review/items", params={"status": "all"},
                                headers=sam)).json()["items"]
    assert {i["text"]: (i["reasons"], i["occurrences"]) for i in again} == \
        {t: (i["reasons"], i["occurrences"]) for t, i in items.items()}
    r = await h.client.post("/api/v1/review/items/bulk",
                            json={"ids": [unneeded["id"]], "action": "ignore"}, headers=sam)
    assert r.json()["changed"] == [unneeded["id"]]
    noor = await login(h.client, "noor")
    await flag(h, noor, await fan_says(h, "fan-b2", UNNEEDED), kind="no_person_needed")
    r = await h.client.get("/api/v1/review/items", params={"reason": "triage_unneeded"},
                           headers=sam)
    [back] = r.json()["items"]
    assert back["id"] == unneeded["id"] and back["status"] == "new"
    assert back["occurrences"] == 2 and back["staff_triage"] == ["none"]


async def test_add_to_triage_data_writes_reviewed_tsv(h, bot_project):
    items = await staff_flagged(h)
    sam = await login(h.client, "sam")
    url = "/api/v1/review/items/{}/triage".format
    assert not (bot_project / REVIEWED_TSV).exists()
    # Only operators; only items staff marked for triage; only known labels (422 list).
    tom = await login(h.client, "tom")
    r = await h.client.post(url(items[MISSED]["id"]), json={"label": "medical"}, headers=tom)
    assert r.status_code == 403
    r = await h.client.post(url(items[BOT_ONLY]["id"]), json={"label": "none"}, headers=sam)
    assert r.status_code == 409 and "staff marked" in r.json()["detail"]
    r = await h.client.post(url(items[MISSED]["id"]), json={"label": "unicorn"}, headers=sam)
    assert r.status_code == 422 and "`label` must be one of" in r.json()["detail"][0]["msg"]
    assert not (bot_project / REVIEWED_TSV).exists()

    r = await h.client.post(url(items[MISSED]["id"]), json={"label": "medical"}, headers=sam)
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["status"] == "annotated" and added["triage_label"] == "medical"
    assert added["intent"] == "triage:medical" and added["annotated_by"] == "sam"
    assert added["file"] == "data/triage/semantic/reviewed.tsv"
    lang = added["example_language"]
    assert len(lang) == 2
    lines = tsv_lines(bot_project)
    assert "\n".join(lines[:3]) + "\n" == HEADER and all(x.startswith("# ") for x in lines[:3])
    assert lines[3:] == [f"medical\t{lang}\t{MISSED}"]
    # What `make train-triage` reads.
    path = bot_project / REVIEWED_TSV
    assert path in data_files(bot_project / "data/triage/semantic")
    [example] = read_tsv(path)
    assert (example.label, example.lang, example.text, example.source) == \
        ("medical", lang, MISSED, "reviewed.tsv")
    # Recorded with who did it; not an NLU probe for the bot's evaluation.
    changes = (await h.client.get("/api/v1/review/changes", headers=sam)).json()
    assert [(c["action"], c["by"], c["intent"], c["example_text"], c["files"])
            for c in changes] == [("add_triage_example", "sam", "medical", MISSED,
                                   ["data/triage/semantic/reviewed.tsv"])]
    probes = run_db(h.services, service.annotated_messages)
    assert items[MISSED]["id"] not in [p["id"] for p in probes]

    # Another label replaces the line (one text, one label).
    r = await h.client.post(url(items[MISSED]["id"]), json={"label": "safety"}, headers=sam)
    assert r.status_code == 200, r.text
    assert tsv_lines(bot_project)[3:] == [f"safety\t{lang}\t{MISSED}"]
    # A text the hand-written data already has: another label is refused, the same is a no-op.
    r = await h.client.post(url(items[UNNEEDED]["id"]), json={"label": "medical"}, headers=sam)
    assert r.status_code == 409 and "none.tsv" in r.json()["detail"]
    r = await h.client.post(url(items[UNNEEDED]["id"]), json={"label": "none"}, headers=sam)
    assert r.status_code == 200 and r.json()["triage_label"] == "none"
    assert tsv_lines(bot_project)[3:] == [f"safety\t{lang}\t{MISSED}"]
    # Reopening takes the line out again.
    r = await h.client.post("/api/v1/review/items/bulk",
                            json={"ids": [items[MISSED]["id"]], "action": "reopen"}, headers=sam)
    assert r.json()["changed"] == [items[MISSED]["id"]]
    assert tsv_lines(bot_project)[3:] == []
    actions = [c["action"] for c in
               (await h.client.get("/api/v1/review/changes", headers=sam)).json()]
    assert actions[:2] == ["remove_triage_example", "add_triage_example"]


async def test_add_to_triage_data_refuses_personal_data(h, bot_project):
    items = await staff_flagged(h)
    sam = await login(h.client, "sam")
    item = items[PERSONAL]
    assert item["staff_triage"] == ["personal"] and "name" in item["personal_data"]
    url = f"/api/v1/review/items/{item['id']}/triage"
    r = await h.client.post(url, json={"label": "personal"}, headers=sam)
    assert r.status_code == 422
    spans = r.json()["detail"]["personal_data"]
    assert [(p["kind"], p["text"]) for p in spans] == [("name", "Ana Lopez")]
    assert not (bot_project / REVIEWED_TSV).exists()  # nothing written
    # The operator's own wording is checked too.
    r = await h.client.post(url, json={"label": "personal", "text": "mail me at a@b.example"},
                            headers=sam)
    assert r.status_code == 422 and r.json()["detail"]["personal_data"][0]["kind"] == "email"
    detail = (await h.client.get(f"/api/v1/review/items/{item['id']}", headers=sam)).json()
    redacted = detail["suggested_text"]
    assert "<name>" in redacted and "Ana" not in redacted
    r = await h.client.post(url, json={"label": "personal", "text": redacted}, headers=sam)
    assert r.status_code == 200, r.text
    [line] = tsv_lines(bot_project)[3:]
    assert line.startswith("personal\t") and line.endswith("\t" + redacted)
    assert "Ana" not in (bot_project / REVIEWED_TSV).read_text()
    # Confirming that it is not personal keeps the wording as written.
    r = await h.client.post(url, json={"label": "personal", "text": "I am Sorry, my dad died",
                                       "confirm_no_personal_data": True}, headers=sam)
    assert r.status_code == 200, r.text
    assert tsv_lines(bot_project)[3:] == [f"personal\t{r.json()['example_language']}\t"
                                          "I am Sorry, my dad died"]


async def test_console_offers_add_to_triage_data(h):
    from tests.api.inbox.test_inbox_api import browser_login

    await browser_login(h.client, "sam")
    page = await h.client.get("/operator")
    assert page.status_code == 200, page.text
    assert 'class="triage-form"' in page.text and "Add to triage data" in page.text
    assert '<option value="medical" data-name="medical emergency">' in page.text
    assert '<option value="none" data-name="did not need a person">' in page.text
    assert '<option value="triage_missed">' in page.text
