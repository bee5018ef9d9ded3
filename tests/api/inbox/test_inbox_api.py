"""The inbox: sign-in with a session cookie, CSRF, lock-out, sign-out, lists, context, notes,
take, transfer, flags, canned responses, permissions and the event stream's resume."""

from __future__ import annotations

import asyncio
import re

import httpx
from sqlalchemy import select

from api.events import Event
from api.inbox.models import MessageFlag
from api.inbox.stream import EventStream
from tests.api.conftest import DEMO_PASSWORD, go_online, login, run_db

LOST = "I can't find my friend and she isn't answering"
REST = "/webhooks/rest/webhook"


async def browser_login(c: httpx.AsyncClient, handle: str, password: str = DEMO_PASSWORD):
    page = await c.get("/inbox/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return await c.post("/inbox/login", data={"handle": handle, "password": password,
                                              "csrf": csrf})


async def page_csrf(c: httpx.AsyncClient) -> str:
    page = await c.get("/inbox")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


async def urgent_for_noor(h) -> int:
    c = h.client
    noor = await login(c, "noor")
    await go_online(c, noor)
    await c.post(REST, json={"sender": "fan-lost", "message": LOST})
    [conv] = (await c.get("/api/v1/conversations", headers=noor)).json()
    assert conv["assignee"]["handle"] == "noor"
    return conv["id"]


async def test_sign_in_cookie_csrf_and_sign_out(harness):
    c = harness.client
    assert (await c.get("/inbox")).status_code == 303  # not signed in: to the login page
    r = await browser_login(c, "noor")
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    cookie = r.headers["set-cookie"]
    assert "sb_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # local mode
    page = await c.get("/inbox")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script type=\"module\" src=\"/inbox/static/inbox.js\">" in page.text
    csrf = await page_csrf(c)
    # the cookie reads; a state change without (or with a wrong) CSRF token is 403
    assert (await c.get("/api/v1/staff/me")).json()["handle"] == "noor"
    body = {"presence": "online"}
    assert (await c.put("/api/v1/staff/me/presence", json=body)).status_code == 403
    assert (await c.put("/api/v1/staff/me/presence", json=body,
                        headers={"X-CSRF-Token": "nope"})).status_code == 403
    assert (await c.put("/api/v1/staff/me/presence", json=body,
                        headers={"X-CSRF-Token": csrf})).status_code == 200
    # sign-out needs the token too, then the session is gone server-side
    stolen = c.cookies.get("sb_session")
    r = await c.post("/inbox/logout", data={"csrf": csrf})
    assert r.status_code == 303
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app),
                                 base_url="http://testserver",
                                 cookies={"sb_session": stolen}) as other:
        assert (await other.get("/api/v1/staff/me")).status_code == 401


async def test_login_form_needs_its_csrf_token(harness):
    r = await harness.client.post("/inbox/login", data={"handle": "noor",
                                                        "password": DEMO_PASSWORD, "csrf": "x"})
    assert r.status_code == 403 and "sb_session" not in r.headers.get("set-cookie", "")


async def test_bearer_requests_need_no_csrf(harness):
    c = harness.client
    await browser_login(c, "karim")  # a cookie for someone else is ignored with a bearer
    noor = await login(c, "noor")
    r = await c.put("/api/v1/staff/me/presence", json={"presence": "away"}, headers=noor)
    assert r.status_code == 200 and r.json()["handle"] == "noor"


async def test_lock_out_after_five_failures(harness, clock):
    c = harness.client
    for _ in range(5):
        r = await c.post("/api/v1/auth/login", json={"handle": "tom", "password": "wrong"})
        assert r.status_code == 401
    # locked: even the right password is refused, on the API and the form
    r = await c.post("/api/v1/auth/login", json={"handle": "tom", "password": DEMO_PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 800
    assert (await browser_login(c, "tom")).status_code == 429
    # other handles are unaffected
    assert (await browser_login(c, "noor")).status_code == 303
    clock.advance(minutes=16)
    r = await c.post("/api/v1/auth/login", json={"handle": "tom", "password": DEMO_PASSWORD})
    assert r.status_code == 200
    # a success clears the count
    for _ in range(4):
        await c.post("/api/v1/auth/login", json={"handle": "tom", "password": "wrong"})
    assert (await c.post("/api/v1/auth/login",
                         json={"handle": "tom", "password": DEMO_PASSWORD})).status_code == 200


async def test_lists_context_notes_flag_and_permissions(harness):
    c = harness.client
    conv_id = await urgent_for_noor(harness)
    noor, karim, tom = [await login(c, h) for h in ("noor", "karim", "tom")]
    lists = (await c.get("/api/v1/inbox", headers=noor)).json()
    [mine] = lists["mine"]
    assert mine["id"] == conv_id and mine["priority"] == "urgent"
    assert mine["target_minutes"] > 0 and mine["first_response_due_at"]
    assert [r["id"] for r in lists["all"]] == [conv_id]  # Noor supervises
    assert (await c.get("/api/v1/inbox", headers=tom)).json() == {
        "mine": [], "queue": [], "all": [], "urgent_unassigned": []}
    ctx = (await c.get(f"/api/v1/conversations/{conv_id}/context", headers=noor)).json()
    assert ctx["channel"] == "rest" and ctx["reasons"] and ctx["may_act"]
    texts = [m["text"] for m in ctx["transcript"]]
    assert LOST in texts
    assert any(m["kind"] == "activity" and m["text"].startswith("handed to Noor: safety — ")
               and "can't find my friend" in m["text"] for m in ctx["transcript"])
    assert ctx["messenger_window"] is None and ctx["earlier"] == [] and ctx["lost_property"] == []
    # a private note: stored, visible to staff, never sent to the fan
    r = await c.post(f"/api/v1/conversations/{conv_id}/notes", json={"text": "call security"},
                     headers=noor)
    assert r.status_code == 201
    notes = (await c.get(f"/api/v1/conversations/{conv_id}/notes", headers=noor)).json()
    assert [n["text"] for n in notes] == ["call security"]
    # staff of another team: no notes, no context, no actions (403)
    for path in ("context", "notes"):
        assert (await c.get(f"/api/v1/conversations/{conv_id}/{path}",
                            headers=tom)).status_code == 403
    assert (await c.post(f"/api/v1/conversations/{conv_id}/notes", json={"text": "x"},
                         headers=tom)).status_code == 403
    assert (await c.get("/api/v1/conversations/9999/notes", headers=tom)).status_code == 404
    # Karim (same team, not assigned, not a supervisor) cannot read it either
    assert (await c.get(f"/api/v1/conversations/{conv_id}/notes",
                        headers=karim)).status_code == 403
    # flag the fan's message (once), not a bot message
    fan_msg = next(m for m in ctx["transcript"] if m["text"] == LOST)
    url = f"/api/v1/conversations/{conv_id}/messages/{fan_msg['id']}/flag"
    assert (await c.post(url, json={}, headers=tom)).status_code == 403
    first = await c.post(url, json={"reason": "lost friend"}, headers=noor)
    again = await c.post(url, json={}, headers=noor)
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    bot_msg = next(m for m in ctx["transcript"] if m["kind"] == "outgoing")
    assert (await c.post(f"/api/v1/conversations/{conv_id}/messages/{bot_msg['id']}/flag",
                         json={}, headers=noor)).status_code == 409
    flags = run_db(harness.services, lambda s: s.scalars(select(MessageFlag)).all())
    assert [(f.message_id, f.status, f.reason) for f in flags] == [
        (fan_msg["id"], "new", "lost friend")]
    ctx = (await c.get(f"/api/v1/conversations/{conv_id}/context", headers=noor)).json()
    assert next(m for m in ctx["transcript"] if m["id"] == fan_msg["id"])["flagged"]


async def test_take_a_queued_conversation_matching_skills(harness):
    c = harness.client
    # nobody online: the safety thread queues
    await c.post(REST, json={"sender": "fan-q", "message": LOST})
    karim, tom = [await login(c, h) for h in ("karim", "tom")]
    await go_online(c, tom, "away")
    await go_online(c, karim, "away")
    karim_q = (await c.get("/api/v1/inbox", headers=karim)).json()["queue"]
    [row] = karim_q
    assert row["status"] == "queued"
    assert (await c.get("/api/v1/inbox", headers=tom)).json()["queue"] == []  # no safety skill
    url = f"/api/v1/conversations/{row['id']}/take"
    assert (await c.post(url, headers=tom)).status_code == 403
    r = await c.post(url, headers=karim)
    assert r.status_code == 200 and r.json()["assignee"] == "karim"
    assert (await c.post(url, headers=karim)).status_code == 409  # no longer queued
    mine = (await c.get("/api/v1/inbox", headers=karim)).json()["mine"]
    assert [m["id"] for m in mine] == [row["id"]]


async def test_transfer_tells_the_colleague_and_the_fan(harness):
    c = harness.client
    conv_id = await urgent_for_noor(harness)
    noor, karim, tom = [await login(c, h) for h in ("noor", "karim", "tom")]
    sub = harness.services.bus.subscribe(types={"conversation.assigned"})
    body = {"handle": "karim", "note": "she is at the main bar"}
    assert (await c.post(f"/api/v1/conversations/{conv_id}/transfer", json=body,
                         headers=tom)).status_code == 403
    r = await c.post(f"/api/v1/conversations/{conv_id}/transfer", json=body, headers=noor)
    assert r.status_code == 200
    ev = await asyncio.wait_for(sub.get(), 2)
    sub.close()
    assert ev.data["handle"] == "karim" and ev.data["previous_staff_id"] is not None
    ctx = (await c.get(f"/api/v1/conversations/{conv_id}/context", headers=karim)).json()
    assert ctx["assignee"]["handle"] == "karim"
    assert any("she is at the main bar" in n["text"] for n in ctx["notes"])
    assert any(m["sender_type"] == "system" and "Karim" in m["text"]
               for m in ctx["transcript"])  # the fan is told
    assert (await c.post(f"/api/v1/conversations/{conv_id}/transfer",
                         json={"handle": "ghost"}, headers=karim)).status_code == 404


async def test_canned_responses_with_placeholders(harness):
    c = harness.client
    conv_id = await urgent_for_noor(harness)
    noor, tom = [await login(c, h) for h in ("noor", "tom")]
    body = {"shortcut": "hi", "text": "Hi {first_name}, {agent_first_name} here."}
    r = await c.post("/api/v1/canned", json=body, headers=tom)
    assert r.status_code == 201
    assert (await c.post("/api/v1/canned", json=body, headers=tom)).status_code == 409
    assert (await c.post("/api/v1/canned", json={"shortcut": "Bad One!", "text": "x"},
                         headers=tom)).status_code == 422
    rows = (await c.get(f"/api/v1/canned?conversation_id={conv_id}", headers=noor)).json()
    assert rows[0]["filled"] == "Hi there, Noor here."
    assert (await c.get(f"/api/v1/canned?conversation_id={conv_id}",
                        headers=tom)).status_code == 403
    other = await c.post("/api/v1/canned", json={"shortcut": "bye", "text": "Bye"},
                         headers=noor)
    assert (await c.delete(f"/api/v1/canned/{other.json()['id']}",
                           headers=tom)).status_code == 403
    assert (await c.delete(f"/api/v1/canned/{r.json()['id']}", headers=noor)).status_code == 204


async def test_canned_management_edit_delete_and_permissions(harness):
    """Everyone may list and add; only the author or a supervisor edits or deletes."""
    c = harness.client
    tom, karim, laura = [await login(c, h) for h in ("tom", "karim", "laura")]
    mine = (await c.post("/api/v1/canned", json={"shortcut": "wait", "text": "One moment"},
                         headers=tom)).json()
    assert mine["may_edit"] is True
    theirs = (await c.post("/api/v1/canned", json={"shortcut": "thanks", "text": "Thanks!"},
                           headers=karim)).json()
    rows = {r["shortcut"]: r for r in (await c.get("/api/v1/canned", headers=tom)).json()}
    assert rows["wait"]["may_edit"] and not rows["thanks"]["may_edit"]
    sup = {r["shortcut"]: r for r in (await c.get("/api/v1/canned", headers=laura)).json()}
    assert sup["wait"]["may_edit"] and sup["thanks"]["may_edit"]
    # the author edits; the shortcut may change, but not onto another one
    body = {"shortcut": "wait2", "text": "One moment, {first_name}"}
    r = await c.put(f"/api/v1/canned/{mine['id']}", json=body, headers=tom)
    assert r.status_code == 200 and r.json()["text"] == body["text"]
    assert (await c.put(f"/api/v1/canned/{mine['id']}", json={"shortcut": "thanks", "text": "x"},
                        headers=tom)).status_code == 409
    assert (await c.put(f"/api/v1/canned/{mine['id']}", json={"shortcut": "ok", "text": ""},
                        headers=tom)).status_code == 422
    # another staff member cannot edit or delete it; a supervisor can; missing ids are 404
    assert (await c.put(f"/api/v1/canned/{theirs['id']}", json=body,
                        headers=tom)).status_code == 403
    assert (await c.delete(f"/api/v1/canned/{theirs['id']}", headers=tom)).status_code == 403
    r = await c.put(f"/api/v1/canned/{theirs['id']}", json={"shortcut": "thanks",
                                                            "text": "Thank you!"}, headers=laura)
    assert r.status_code == 200
    assert (await c.put("/api/v1/canned/9999", json=body, headers=laura)).status_code == 404
    assert (await c.put(f"/api/v1/canned/{mine['id']}", json=body)).status_code == 401
    # with the browser's cookie, an edit needs the CSRF token
    await browser_login(c, "tom")
    csrf = await page_csrf(c)
    assert (await c.put(f"/api/v1/canned/{mine['id']}", json=body)).status_code == 403
    assert (await c.put(f"/api/v1/canned/{mine['id']}", json=body,
                        headers={"X-CSRF-Token": csrf})).status_code == 200
    assert (await c.delete(f"/api/v1/canned/{mine['id']}",
                           headers={"X-CSRF-Token": csrf})).status_code == 204
    assert (await c.delete(f"/api/v1/canned/{theirs['id']}", headers=laura)).status_code == 204
    assert (await c.get("/api/v1/canned", headers=laura)).json() == []


async def test_stream_replays_after_last_event_id():
    from api.events import InProcessEventBus

    bus = InProcessEventBus()
    stream = EventStream(bus, size=3, heartbeat_s=0.05)
    await stream.start()
    for i in range(5):
        bus.publish(Event("message.created", 1, {"message_id": i, "reason": "secret note"}))
    await asyncio.sleep(0.05)
    events, lost = stream.missed(3)
    assert [e.id for e in events] == [4, 5] and not lost
    events, lost = stream.missed(1)  # id 2 already left the ring
    assert [e.id for e in events] == [3, 4, 5] and lost

    async def gone():
        return True

    frames = [f async for f in stream.follow(last_id=3, disconnected=gone)]
    text = "".join(frames)
    assert "id: 4\n" in text and "id: 5\n" in text and "id: 3\n" not in text
    assert "secret note" not in text  # only public keys leave the server
    frames = [f async for f in stream.follow(last_id=1, disconnected=gone)]
    assert "event: resync" in "".join(frames)
    await stream.stop()


def test_event_stream_over_http(live_server):
    """The real SSE endpoint: a bearer client gets live events, then resumes after a drop."""
    base = live_server.url
    with httpx.Client(base_url=base, timeout=10) as c:
        token = c.post("/api/v1/auth/login",
                       json={"handle": "noor", "password": DEMO_PASSWORD}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def first_events(headers, n, action=None):
            seen = []
            with c.stream("GET", "/api/v1/events", headers=headers) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                started = False
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        seen.append(int(line[4:]))
                    if not started and line.startswith("retry:") and action:
                        started = True
                        action()
                    if len(seen) >= n:
                        return seen
            return seen

        def presence(p):
            return lambda: c.put("/api/v1/staff/me/presence", json={"presence": p},
                                 headers=auth)

        got = first_events(auth, 2, presence("online"))  # hello, then the presence event
        last = got[-1]
        presence("away")()  # while disconnected
        presence("online")()
        replay = first_events({**auth, "Last-Event-ID": str(last)}, 2)
        assert replay == [last + 1, last + 2]
        assert c.get("/api/v1/events").status_code == 401
