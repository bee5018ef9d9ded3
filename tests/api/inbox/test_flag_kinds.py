"""Flag kinds: besides "the bot should have known this", staff say a fan message should have
come to a person (and which: a triage label) or did not need one. Validation (422 in the
project's one shape), one flag per message and kind, the pane's view, and the migration that
adds the columns (existing flags become kind ``bot``)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, select, text

from api.inbox import schemas
from api.inbox.models import MessageFlag
from api.migrations.config import alembic_config
from api.triage.semantic import LABELS
from tests.api.conftest import login, run_db
from tests.api.inbox.test_inbox_api import LOST, urgent_for_noor


async def _fan_message(h) -> tuple[int, int, dict]:
    conv_id = await urgent_for_noor(h)
    noor = await login(h.client, "noor")
    ctx = (await h.client.get(f"/api/v1/conversations/{conv_id}/context", headers=noor)).json()
    fan_msg = next(m for m in ctx["transcript"] if m["text"] == LOST)
    return conv_id, fan_msg["id"], noor


def test_every_triage_label_has_a_name_staff_read():
    assert set(schemas.LABEL_NAMES) == set(LABELS)
    assert schemas.label_name("medical") == "medical emergency"
    assert schemas.label_name("personal") == "grief / personal"
    assert "none" not in schemas.STAFF_LABELS
    assert set(schemas.STAFF_LABELS) == set(LABELS) - {"none"}


BAD_FLAGS = [
    ({"kind": "needs_person"}, "needs `label`"),
    ({"kind": "needs_person", "label": "unicorn"}, "needs `label`"),
    ({"kind": "needs_person", "label": "none"}, "needs `label`"),
    ({"kind": "bot", "label": "medical"}, "only with kind `needs_person`"),
    ({"kind": "no_person_needed", "label": "medical"}, "only with kind `needs_person`"),
    ({"label": "medical"}, "only with kind `needs_person`"),
    ({"kind": "maybe"}, None),
    ({"kind": "needs_person", "label": "medical", "extra": 1}, None),
]


async def test_flag_kind_validation_is_a_422(harness):
    conv_id, mid, noor = await _fan_message(harness)
    for body, says in BAD_FLAGS:
        r = await harness.client.post(f"/api/v1/conversations/{conv_id}/messages/{mid}/flag",
                                      json=body, headers=noor)
        assert r.status_code == 422, (body, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail and all("ctx" not in d for d in detail)
        if says:
            assert says in detail[0]["msg"], (body, detail)
    assert run_db(harness.services, lambda s: s.scalars(select(MessageFlag)).all()) == []


async def test_one_flag_per_message_and_kind(harness):
    c = harness.client
    conv_id, mid, noor = await _fan_message(harness)
    url = f"/api/v1/conversations/{conv_id}/messages/{mid}/flag"
    bot = await c.post(url, json={}, headers=noor)
    missed = await c.post(url, json={"kind": "needs_person", "label": "medical"}, headers=noor)
    unneeded = await c.post(url, json={"kind": "no_person_needed", "reason": "just chatting"},
                            headers=noor)
    assert [r.status_code for r in (bot, missed, unneeded)] == [201, 201, 201]
    assert missed.json() == {"id": missed.json()["id"], "message_id": mid,
                             "kind": "needs_person"}
    ids = {r.json()["id"] for r in (bot, missed, unneeded)}
    assert len(ids) == 3
    # Again (even with another label): the first flag of that kind.
    again = await c.post(url, json={"kind": "needs_person", "label": "safety"}, headers=noor)
    assert again.status_code == 201 and again.json()["id"] == missed.json()["id"]
    assert (await c.post(url, json={}, headers=noor)).json()["id"] == bot.json()["id"]
    flags = run_db(harness.services, lambda s: s.scalars(
        select(MessageFlag).order_by(MessageFlag.id)).all())
    assert [(f.message_id, f.kind, f.label, f.status, f.reason) for f in flags] == [
        (mid, "bot", None, "new", "the bot should have known this"),
        (mid, "needs_person", "medical", "new", "should have come to a person: medical emergency"),
        (mid, "no_person_needed", None, "new", "just chatting"),
    ]
    ctx = (await c.get(f"/api/v1/conversations/{conv_id}/context", headers=noor)).json()
    entry = next(m for m in ctx["transcript"] if m["id"] == mid)
    assert entry["flagged"] is True
    assert entry["flags"] == {"bot": None, "needs_person": "medical", "no_person_needed": None}
    assert all(m["flags"] == {} for m in ctx["transcript"] if m["id"] != mid)
    # Staff of another team still cannot flag (403), a bot message still cannot be (409).
    tom = await login(c, "tom")
    r = await c.post(url, json={"kind": "no_person_needed"}, headers=tom)
    assert r.status_code == 403
    bot_msg = next(m for m in ctx["transcript"] if m["kind"] == "outgoing")
    r = await c.post(f"/api/v1/conversations/{conv_id}/messages/{bot_msg['id']}/flag",
                     json={"kind": "needs_person", "label": "medical"}, headers=noor)
    assert r.status_code == 409


async def test_the_inbox_page_offers_the_labels_by_name(harness):
    from tests.api.inbox.test_inbox_api import browser_login

    await browser_login(harness.client, "noor")
    page = (await harness.client.get("/inbox")).text
    assert 'class="person-flag-form"' in page
    assert '<option value="medical">medical emergency</option>' in page
    assert '<option value="personal">grief / personal</option>' in page
    assert 'value="none"' not in page  # "did not need a person" is its own button


def test_migration_0006_keeps_existing_flags_as_bot(tmp_path):
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0005")
    engine = create_engine(url)  # no foreign-key pragma: a bare flag row is enough here
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO message_flags (message_id, conversation_id, staff_id, reason, "
                "status, created_at) VALUES (1, 1, NULL, 'old', 'new', '2027-07-15 00:00:00')"))
        command.upgrade(cfg, "0006")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT kind, label, reason FROM message_flags")).all() == [
                ("bot", None, "old")]
        command.downgrade(cfg, "0005")
        with engine.connect() as conn:
            cols = [r[1] for r in conn.execute(text("PRAGMA table_info(message_flags)"))]
            assert "kind" not in cols and "label" not in cols
            assert conn.execute(text("SELECT reason FROM message_flags")).all() == [("old",)]
    finally:
        engine.dispose()
