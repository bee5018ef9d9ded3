"""The real rasa-webchat 1.0.1 widget in headless Chromium against a live switchboard and the
real bot (trained model, Rasa and action servers)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.conversations.models import Message
from api.enums import MessageKind, RelayStatus
from tests.api.conftest import LiveServer, run_db

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
GREETING = re.compile(r"Hey!|Hi there!")  # data/answers.yml `greet`


@pytest.fixture
def switchboard(bot_settings, triage_engine):
    server = LiveServer(bot_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def test_widget_greets_and_talks_to_the_bot(switchboard, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(switchboard.url + "/")
            page.click(".rw-launcher", timeout=15_000)
            # initPayload "/greet": the bot speaks first, without the fan typing anything
            page.locator(".rw-response", has_text=GREETING).first.wait_for(timeout=30_000)
            box = page.locator(".rw-new-message")
            box.wait_for(timeout=15_000)
            box.fill("what time do you open?")
            box.press("Enter")
            reply = page.locator(".rw-response", has_text="23:30")  # doors, data/venue.yml
            reply.first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "fan-page.png"))
        finally:
            browser.close()

    def check(s):
        return s.scalars(select(Message).where(Message.kind == MessageKind.incoming)
                         .order_by(Message.id)).all()

    msgs = run_db(switchboard.app.state.services, check)
    assert [m.text for m in msgs] == ["/greet", "what time do you open?"]
    assert all(m.channel.value == "webchat" for m in msgs)
    assert all(m.relay_status == RelayStatus.answered for m in msgs)
    assert msgs[0].intent == "greet"
    # The bundle asks for a Google Fonts stylesheet: the page's CSP blocks that external load on
    # purpose (no CDN, nothing leaves the machine). Nothing else may be blocked.
    blocked = [e for e in errors if "Content Security Policy" in e or "violates" in e]
    assert all("fonts.googleapis.com" in e for e in blocked), blocked


def test_widget_adopts_the_session_id_the_server_issues(switchboard):
    """rasa-webchat keeps the id ``session_confirm`` returns: a stored id the server does not
    accept (too short) is replaced in the browser, and a reload rejoins the issued one."""
    from playwright.sync_api import sync_playwright

    stored = "JSON.parse(localStorage.getItem('chat_session') || '{}').session_id || ''"

    def issued_id(page, timeout_s: float = 30.0) -> str:
        # polled from here: the page's CSP forbids the eval wait_for_function would need
        for _ in range(int(timeout_s * 10)):
            value = page.evaluate(stored)
            if re.fullmatch(r"[0-9a-f]{32}", value):
                return value
            page.wait_for_timeout(100)
        raise AssertionError(f"the widget holds no issued session id: {value!r}")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(switchboard.url + "/")
            first = issued_id(page)
            page.reload()  # the stored id is replayed and kept
            page.wait_for_timeout(1_000)
            assert page.evaluate(stored) == first
            page.evaluate("""() => {
                const s = JSON.parse(localStorage.getItem('chat_session'));
                s.session_id = 'short';
                localStorage.setItem('chat_session', JSON.stringify(s));
            }""")
            page.reload()
            assert issued_id(page) != first
        finally:
            browser.close()
