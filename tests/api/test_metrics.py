"""GET /metrics: scraped after a scripted evening and parsed with prometheus-client's own parser
(the figures match what was sent); the token rule; one registry per app."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from api.conversations.models import Conversation
from api.enums import ConversationStatus
from api.main import create_app
from tests.api.conftest import run_db
from tests.api.scripted_run import URL, scripted_run

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[str, dict[frozenset, float]]:
    """{sample name: {frozenset(labels): value}} of an exposition."""
    out: dict[str, dict[frozenset, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def by(figures: dict[frozenset, float], label: str) -> dict[str, float]:
    return {dict(k)[label]: v for k, v in figures.items()}


async def test_figures_after_a_scripted_evening(live_server, fake_rasa):
    sent = await scripted_run(live_server, fake_rasa)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)

    assert by(m["fan_messages_total"], "channel") == {
        "rest": sent.fan_messages["rest"], "webchat": sent.fan_messages["webchat"],
        "messenger": 0}
    assert m["bot_turns_total"][frozenset()] == sent.bot_turns
    # every answered turn that called Rasa was timed (none was found in the tracker)
    assert m["bot_turn_seconds_count"][frozenset()] == sent.bot_turns
    assert m["bot_turn_seconds_sum"][frozenset()] > 0
    assert sum(m["rasa_errors_total"].values()) == sent.rasa_errors
    assert m["holding_replies_total"][frozenset()] == sent.holding_replies
    assert {(dict(k)["trigger"], dict(k)["topic"]): v
            for k, v in m["handoffs_total"].items()} == sent.handoffs
    assert by(m["first_human_reply_seconds_count"], "topic") == {"lost_person": sent.first_replies}
    deliveries = {(dict(k)["channel"], dict(k)["status"]): v
                  for k, v in m["deliveries_total"].items()}
    assert deliveries == {("rest", "sent"): sent.rest_replies,
                          ("webchat", "sent"): sent.webchat_replies}
    queued = run_db(live_server.app.state.services, lambda s: s.scalar(
        select(func.count(Conversation.id)).where(
            Conversation.status == ConversationStatus.queued)))
    assert queued == 1  # the web chat fan who asked for a person (nobody online for general)
    assert m["queue_conversations"][frozenset()] == queued
    assert m["queue_oldest_wait_seconds"][frozenset()] > 0
    assert by(m["training_jobs"], "status") == {"queued": 0, "running": 0, "succeeded": 0,
                                                "failed": 0}
    assert m["webchat_socketio_connections"][frozenset()] == 0  # the widgets have left
    assert m["inbox_sse_connections"][frozenset()] == 0


async def test_messenger_deliveries_sent_retried_dead(messenger_harness, fake_graph):
    from tests.api.test_messenger import event, payload, post_signed

    h = messenger_harness
    typing_ok = (200, {"recipient_id": "psid-1"})  # the typing indicator goes first
    fake_graph.fail_next(typing_ok, fake_graph.error(2, status=500))  # then one retry
    await post_signed(h.client, payload({"messaging": [event(mid="mid-1", text="hello")]}))
    await h.settle()
    fake_graph.fail_next(typing_ok, fake_graph.error(551))  # person unavailable: final
    await post_signed(h.client, payload({"messaging": [event(mid="mid-2", text="hi again")]}))
    await h.settle()
    m = samples((await h.client.get("/metrics")).text)
    assert by(m["fan_messages_total"], "channel")["messenger"] == 2
    assert {dict(k)["status"]: v for k, v in m["deliveries_total"].items()
            if dict(k)["channel"] == "messenger"} == {"sent": 1, "retried": 1, "dead": 1}


async def test_two_apps_in_one_process_count_apart(harness, make_settings):
    other = create_app(make_settings())  # a second registry: no clash, no shared figures
    r = await harness.client.post(URL, json={"sender": "fan-x", "message": "hello"})
    assert r.status_code == 200
    mine = samples((await harness.client.get("/metrics")).text)
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
        theirs = samples((await client.get("/metrics")).text)
    assert by(mine["fan_messages_total"], "channel")["rest"] == 1
    assert by(theirs["fan_messages_total"], "channel")["rest"] == 0


@pytest.mark.parametrize("app_env, token, header, status", [
    ("local", None, None, 200),  # local mode: open on the switchboard's port
    ("local", METRICS_TOKEN, None, 401),  # a token once set is always required
    ("local", METRICS_TOKEN, f"Bearer {METRICS_TOKEN}", 200),
    ("production", None, f"Bearer {METRICS_TOKEN}", 404),  # no token: off
    ("production", METRICS_TOKEN, None, 401),
    ("production", METRICS_TOKEN, "Bearer wrong-token-0123456789", 401),
    ("production", METRICS_TOKEN, METRICS_TOKEN, 401),  # not a Bearer header
    ("production", METRICS_TOKEN, f"Bearer {METRICS_TOKEN}", 200),
])
async def test_token_rule(make_settings, app_env, token, header, status):
    extra = {"METRICS_TOKEN": token} if token else {}
    if app_env != "local":
        extra.update(RASA_TOKEN="rasa-token-0123456789",
                     AUTH_TOKEN_SECRET="auth-token-secret-0123456789")
    app = create_app(make_settings(APP_ENV=app_env, **extra))
    headers = {"Authorization": header} if header else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
        r = await client.get("/metrics", headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert "fan_messages_total" in r.text
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


def test_placeholder_metrics_token_refused_outside_local(make_settings):
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        make_settings(APP_ENV="production", RASA_TOKEN="rasa-token-0123456789",
                      AUTH_TOKEN_SECRET="auth-token-secret-0123456789", METRICS_TOKEN="short")


async def test_grafana_dashboard_uses_only_exposed_metrics(harness):
    """docs/grafana-switchboard.json queries only series /metrics exposes."""
    import json
    import re

    from tests.api.conftest import REPO_ROOT

    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-switchboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    promql = {"sum", "by", "rate", "increase", "max", "histogram_quantile", "le", "channel",
              "kind", "trigger", "topic", "status", "m", "h"}
    used = {w for e in exprs for w in re.findall(r"[a-z_]+", e)} - promql
    exposed = {name for family in text_string_to_metric_families(
        (await harness.client.get("/metrics")).text) for name in
        [family.name, *(s.name for s in family.samples)]}
    # a labelled counter or histogram shows samples only once it has a label set: its family
    # (described, with no samples yet) suffices
    exposed |= {n + suffix for n in exposed for suffix in ("_total", "_bucket")}
    assert used and used <= exposed, used - exposed
