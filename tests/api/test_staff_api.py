"""The staff API: login, bearer tokens (401), permissions (403), strict schemas (422), filters,
demo accounts in local mode only and refusal of demo credentials elsewhere."""

from __future__ import annotations

import pytest

from api.auth import security
from tests.api.conftest import DEMO_PASSWORD, go_online, login

LOST = "I can't find my friend and she isn't answering"
REST = "/webhooks/rest/webhook"


async def test_login_and_token(harness):
    r = await harness.client.post("/api/v1/auth/login",
                                  json={"handle": "noor", "password": DEMO_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    me = await harness.client.get("/api/v1/staff/me",
                                  headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["handle"] == "noor"
    bad = await harness.client.post("/api/v1/auth/login",
                                    json={"handle": "noor", "password": "nope"})
    assert bad.status_code == 401
    unknown = await harness.client.post("/api/v1/auth/login",
                                        json={"handle": "ghost", "password": DEMO_PASSWORD})
    assert unknown.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/conversations", None),
    ("GET", "/api/v1/conversations/1", None),
    ("POST", "/api/v1/conversations/1/messages", {"text": "hi"}),
    ("POST", "/api/v1/conversations/1/handback", None),
    ("POST", "/api/v1/conversations/1/resolve", None),
    ("PUT", "/api/v1/staff/me/presence", {"presence": "online"}),
    ("GET", "/api/v1/staff/me", None),
])
async def test_every_call_needs_a_valid_token(harness, method, path, body):
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic bm9vcjphdXJvcmEtZGVtbw=="}):
        r = await harness.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)


async def test_expired_and_forged_tokens_are_refused():
    token = security.issue_token(secret="s" * 20, staff_id=1, version=3, ttl_s=60, now=1000)
    claims = security.read_token(secret="s" * 20, token=token, now=1001)
    assert (claims.staff_id, claims.version) == (1, 3)
    assert security.read_token(secret="s" * 20, token=token, now=1061) is None  # expired
    assert security.read_token(secret="x" * 20, token=token, now=1001) is None  # other secret
    body, sig = token.split(".")
    assert security.read_token(secret="s" * 20, token=body + "x." + sig, now=1001) is None


async def test_strict_schemas_422(harness):
    c = harness.client
    r = await c.post("/api/v1/auth/login",
                     json={"handle": "noor", "password": DEMO_PASSWORD, "admin": True})
    assert r.status_code == 422
    noor = await login(c, "noor")
    assert (await c.put("/api/v1/staff/me/presence", json={"presence": "busy"},
                        headers=noor)).status_code == 422
    assert (await c.put("/api/v1/staff/me/presence",
                        json={"presence": "online", "x": 1}, headers=noor)).status_code == 422
    await go_online(c, noor)
    await c.post(REST, json={"sender": "fan-s", "message": LOST})
    [conv] = (await c.get("/api/v1/conversations", headers=noor)).json()
    url = f"/api/v1/conversations/{conv['id']}/messages"
    assert (await c.post(url, json={"text": "hi", "sender": "x"}, headers=noor)).status_code \
        == 422
    assert (await c.post(url, json={}, headers=noor)).status_code == 422


async def test_permissions_filters_and_transcript(harness):
    c = harness.client
    noor, karim, laura, tom = [await login(c, h) for h in ("noor", "karim", "laura", "tom")]
    await go_online(c, noor)
    await c.post(REST, json={"sender": "fan-p", "message": LOST})
    [conv] = (await c.get("/api/v1/conversations?status=assigned&assignee=noor",
                          headers=laura)).json()
    cid = conv["id"]
    assert conv["assignee"]["handle"] == "noor" and conv["topic"] == "lost_person"
    assert conv["priority"] == "urgent" and conv["triggers"] == ["safety"]
    assert (await c.get("/api/v1/conversations?topic=refund", headers=laura)).json() == []
    assert (await c.get("/api/v1/conversations?status=queued", headers=laura)).json() == []
    # a staff member who is not a supervisor sees only their own threads and the queue
    assert (await c.get("/api/v1/conversations", headers=tom)).json() == []
    assert (await c.get(f"/api/v1/conversations/{cid}", headers=tom)).status_code == 403
    for action in ("handback", "resolve"):
        r = await c.post(f"/api/v1/conversations/{cid}/{action}", headers=karim)
        assert r.status_code == 403
    assert (await c.get("/api/v1/conversations/999", headers=laura)).status_code == 404
    # the assignee reads the transcript: the fan's words, the handoff text, the activities
    detail = (await c.get(f"/api/v1/conversations/{cid}", headers=noor)).json()
    kinds = [(m["kind"], m["sender_type"]) for m in detail["messages"]]
    assert ("incoming", "fan") in kinds and ("outgoing", "system") in kinds
    assert any("bot → assigned" in (m["text"] or "") for m in detail["messages"])
    # a supervisor may act on anyone's thread
    r = await c.post(f"/api/v1/conversations/{cid}/resolve", headers=laura)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    # illegal moves are 409
    r = await c.post(f"/api/v1/conversations/{cid}/handback", headers=laura)
    assert r.status_code == 409
    r = await c.post(f"/api/v1/conversations/{cid}/messages", json={"text": "x"},
                     headers=laura)
    assert r.status_code == 409


async def test_refuses_to_start_with_demo_credentials_outside_local(make_settings,
                                                                    triage_engine):
    from api.main import DefaultCredentials, create_app

    # local mode gave everyone the demo password ...
    local = create_app(make_settings(), triage=triage_engine, timers=False)
    async with local.router.lifespan_context(local):
        pass
    # ... so a production start on that database refuses
    prod = create_app(make_settings(APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
                                    AUTH_TOKEN_SECRET="a-real-long-secret-value-0123"),
                      triage=triage_engine, timers=False)
    with pytest.raises(DefaultCredentials, match="demo password"):
        async with prod.router.lifespan_context(prod):
            pass
