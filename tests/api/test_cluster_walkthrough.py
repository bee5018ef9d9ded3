"""Issue 13's "Done when", walked for real: `make cluster` (scripts/cluster.py: HAProxy, two
switchboard replicas on PostgreSQL and Redis, Rasa with its tracker store on PostgreSQL and its
lock store on Redis) with the trained model; a fan on the unmodified rasa-webchat widget in
headless Chromium, connected through the balancer, writes something urgent; Noor, signed in to
the inbox on the other replica, sees the thread arrive live, assigned to her, and replies; the
fan reads it under her name. Then the replica holding the fan's socket is killed (SIGKILL) while
they talk: the widget reconnects through the balancer to the surviving replica, the fan writes
again, Noor answers again, and the fan's widget shows every message of the conversation once, in
order, as the database has each of them once.

The engine.io ping is shortened (2 s + 3 s) so a reply is proven delivered within seconds: a
reply still awaiting its proof when its replica dies is sent again (at least once, by design;
docs/architecture.md), so the kill comes once Noor's first reply is proven shown. The fan writes
again once the widget has seen its socket close: the widget never acknowledges an emit, so a
message written into the dead socket in the instant before the browser notices is lost (a known
gap of the unmodified widget, docs/architecture.md).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from api.channels.webchat.socket import to_bot_uttered
from api.conversations.models import Conversation, Message
from api.enums import DeliveryStatus, MessageKind
from api.flows import out_ref
from api.outbox.models import OutboxItem
from tests.api.conftest import DEMO_PASSWORD
from tests.api.test_browser import ARGS, CHROMIUM, GREETING
from tests.support.cluster import Cluster, gone, start_cluster

pytestmark = [pytest.mark.browser, pytest.mark.rasa, pytest.mark.cluster]

URGENT = "i can't find my friend and she's not answering, we got separated at the main room"
FIRST_REPLY = "Noor here. Stay where you are, I'm coming to the main room now."
AGAIN = "ok i'm next to the bar by the stairs, wearing a yellow jacket"
SECOND_REPLY = "Got it, yellow jacket by the stairs. I'll be there in two minutes."
RASA_START_S = 300  # Rasa loads its model in about a minute here; a busy machine takes longer


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    with start_cluster(tmp_path / "cluster", rasa=True,
                       redis_url="redis://127.0.0.1:6379/11", env=dict(
                           WEBCHAT_PING_INTERVAL_S="2", WEBCHAT_PING_TIMEOUT_S="3",
                           OUTBOX_POLL_S="0.5")) as started:
        started.wait_for_line("cluster ready replicas=2", timeout=180)
        for port in started.replica_ports:  # Rasa, the action server and triage answer too
            ready(f"http://127.0.0.1:{port}/healthz", started, RASA_START_S)
        yield started


def ready(url: str, cluster: Cluster, timeout: float) -> None:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5)
            if last.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    pytest.fail(f"{url} not ready within {timeout:.0f} s ({getattr(last, 'text', last)})\n"
                + cluster.logs())


def open_chat(page, url: str):
    """Load the fan page and open the chat (the widget remembers whether it was open)."""
    page.goto(url + "/")
    page.click(".rw-launcher", timeout=15_000)
    box = page.locator(".rw-new-message")
    box.wait_for(timeout=15_000)
    return box


def replica_of(context) -> str | None:
    """The replica the balancer pinned this browser's socket.io session to (its cookie)."""
    return next((c["value"] for c in context.cookies()
                 if c["name"] == "SWITCHBOARD_REPLICA"), None)


def shown(page) -> list[str]:
    """The widget's messages as the fan sees them, top to bottom: the fan's and the desk's."""
    return [" ".join(t.split()) for t in
            page.locator(".rw-client, .rw-response").all_text_contents()]


def conversation_as_stored(engine) -> tuple[list[str], list[str]]:
    """From the switchboard's database: the fan's messages (the widget's silent "/greet"
    aside), and the conversation as the widget must show it — each fan message and each
    payload of each reply sent to the fan, in the order they were stored."""
    with Session(engine) as session:
        conversation = session.scalars(select(Conversation)).one()
        messages = session.scalars(select(Message).where(
            Message.conversation_id == conversation.id).order_by(Message.id)).all()
        sent = set(session.scalars(select(OutboxItem.message_id).where(
            OutboxItem.conversation_id == conversation.id)))
        fan = [m.text for m in messages
               if m.kind == MessageKind.incoming and not m.text.startswith("/")]
        expected = []
        for m in messages:
            if m.kind == MessageKind.incoming and not m.text.startswith("/"):
                expected.append(m.text)
            elif m.id in sent:
                expected += [p["text"] for p in to_bot_uttered(out_ref(m)) if "text" in p]
        return fan, [" ".join(t.split()) for t in expected]


def seen_in(page, console: list[str], wanted: str, timeout: float = 15) -> None:
    """Wait for the fan page to log ``wanted`` after its last "killed" line (the widget logs
    its socket's events: "transport close", "connect:<id>", "session_confirm:...")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = max(i for i, line in enumerate(console) if " killed " in line)
        if any(wanted in line for line in console[start:]):
            return
        page.wait_for_timeout(50)  # Playwright delivers the page's events meanwhile
    raise AssertionError(f"the widget never logged {wanted!r}: {console}")


def delivery_of(engine, text: str) -> DeliveryStatus | None:
    with Session(engine) as session:
        return session.scalar(select(Message.delivery_status).where(
            Message.kind == MessageKind.outgoing, Message.text == text))


def until_delivered(engine, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (status := delivery_of(engine, text)) != DeliveryStatus.delivered:
        assert time.monotonic() < deadline, f"{text!r} never proven delivered ({status})"
        time.sleep(0.2)


def test_fan_and_noor_talk_through_the_cluster_while_a_replica_dies(cluster, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("INBOX_SCREENSHOTS") or tmp_path)
    engine = create_engine(cluster.database_url)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # The fan, through the balancer: the bot greets first (Rasa behind the cluster).
            fan_ctx = browser.new_context()
            fan = fan_ctx.new_page()
            fan.on("pageerror", lambda e: errors.append(f"fan: {e}"))
            console: list[str] = []
            fan.on("console", lambda m: console.append(f"{time.monotonic():.3f} {m.text}")
                   if "Content Security Policy" not in m.text else None)
            box = open_chat(fan, cluster.url)
            fan.locator(".rw-response", has_text=GREETING).first.wait_for(timeout=60_000)
            fans_replica = replica_of(fan_ctx)
            assert fans_replica in ("switchboard-1", "switchboard-2"), fan_ctx.cookies()
            noors_replica = ({"switchboard-1", "switchboard-2"} - {fans_replica}).pop()

            # Noor, in the inbox on the other replica, directly (past the balancer).
            staff_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            inbox = staff_ctx.new_page()
            inbox.on("pageerror", lambda e: errors.append(f"inbox: {e}"))
            inbox.goto(cluster.replica_url(noors_replica) + "/inbox")
            inbox.fill("input[name=handle]", "noor")
            inbox.fill("input[name=password]", DEMO_PASSWORD)
            inbox.click("button[type=submit]")
            inbox.wait_for_url(re.compile(r"/inbox$"))
            expect(inbox.locator("#live")).to_have_text("live", timeout=15_000)
            with inbox.expect_response(lambda r: r.url.endswith("/api/v1/staff/me/presence")
                                       ) as presence:
                inbox.select_option("#presence", "online")
            assert presence.value.ok  # online before the fan writes: routing picks her

            # Something urgent: triage hands it to the welfare team, Noor is the one online.
            box.fill(URGENT)
            box.press("Enter")
            fan.locator(".rw-response", has_text="Noor").first.wait_for(timeout=60_000)

            # Live in Noor's list (stored on the fan's replica, streamed on hers), hers.
            row = inbox.locator("#list-mine .conv").first
            row.wait_for(timeout=15_000)
            expect(row.locator(".badge")).to_have_text("urgent")
            row.click()
            expect(inbox.locator(".transcript")).to_contain_text("handed to Noor")
            expect(inbox.locator(".transcript .incoming .msg-text", has_text=URGENT)
                   ).to_have_count(1)

            composer = inbox.locator(".composer textarea")
            composer.fill(FIRST_REPLY)
            composer.press("Enter")
            # The unmodified widget shows no sender names: the text carries hers.
            fan.locator(".rw-response", has_text=f"Noor: {FIRST_REPLY}").wait_for(
                timeout=30_000)
            until_delivered(engine, FIRST_REPLY)
            assert replica_of(fan_ctx) == fans_replica  # the socket stayed where it was

            # The fan's replica dies while they talk; the fan writes again as soon as the
            # widget has seen its socket close (a message written into the dead socket before
            # the browser noticed is lost: the widget's emits are never acknowledged).
            victim = cluster.pid(fans_replica)
            os.kill(victim, signal.SIGKILL)
            console.append(f"{time.monotonic():.3f} killed {fans_replica}")
            seen_in(fan, console, "transport close")
            box.fill(AGAIN)
            box.press("Enter")
            console.append(f"{time.monotonic():.3f} sent")
            fan.locator(".rw-client", has_text=AGAIN).wait_for(timeout=15_000)
            incoming = inbox.locator(".transcript .incoming .msg-text", has_text=AGAIN)
            try:
                incoming.wait_for(timeout=60_000)
            except Exception:
                raise AssertionError(f"fan sees {shown(fan)}; console {console}") from None
            assert gone(victim)
            assert replica_of(fan_ctx) == noors_replica  # reconnected through the balancer

            composer.fill(SECOND_REPLY)
            composer.press("Enter")
            fan.locator(".rw-response", has_text=f"Noor: {SECOND_REPLY}").wait_for(
                timeout=30_000)
            until_delivered(engine, SECOND_REPLY)
            fan.wait_for_timeout(2_000)  # a late duplicate would show by now
            inbox.screenshot(path=str(shots / "cluster-inbox.png"))
            fan.screenshot(path=str(shots / "cluster-fan.png"))

            # Everything once, in order: the widget against the database.
            fan_said, conversation = conversation_as_stored(engine)
            on_screen = shown(fan)
            assert fan_said == [URGENT, AGAIN]
            assert on_screen == conversation
            for text in (URGENT, AGAIN):
                expect(inbox.locator(".transcript .incoming .msg-text", has_text=text)
                       ).to_have_count(1)
            for text in (FIRST_REPLY, SECOND_REPLY):
                expect(inbox.locator(".transcript .from-staff", has_text=text)).to_have_count(1)
        finally:
            browser.close()
            engine.dispose()
    assert not errors, errors
