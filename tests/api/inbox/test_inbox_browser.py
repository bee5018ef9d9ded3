"""The inbox in headless Chromium with the real bot and triage: a fan on the web chat widget,
Noor in the inbox in a second browser context, live updates, reply, XSS payloads shown as text,
handback. Screenshots go to ``INBOX_SCREENSHOTS`` (default: the test's temp dir)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.api.conftest import DEMO_PASSWORD, LiveServer
from tests.api.test_browser import ARGS, CHROMIUM, GREETING

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

LOST = "I can't find my friend and she isn't answering"
XSS = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">help"
REPLY = "Hi, Noor here. Where did you last see her?"


@pytest.fixture
def switchboard(bot_settings, triage_engine):
    server = LiveServer(bot_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def test_noor_handles_a_distressed_fan_live(switchboard, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("INBOX_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            staff_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            inbox = staff_ctx.new_page()
            inbox.on("pageerror", lambda e: errors.append(str(e)))
            inbox.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            inbox.goto(switchboard.url + "/inbox")
            inbox.screenshot(path=str(shots / "inbox-login.png"))
            inbox.fill("input[name=handle]", "noor")
            inbox.fill("input[name=password]", DEMO_PASSWORD)
            inbox.click("button[type=submit]")
            inbox.wait_for_url(re.compile(r"/inbox$"))
            expect(inbox.locator("#live")).to_have_text("live", timeout=10_000)
            inbox.select_option("#presence", "online")
            inbox.wait_for_timeout(300)

            fan_ctx = browser.new_context()
            fan = fan_ctx.new_page()
            fan.goto(switchboard.url + "/")
            fan.click(".rw-launcher", timeout=15_000)
            fan.locator(".rw-response", has_text=GREETING).first.wait_for(timeout=30_000)
            box = fan.locator(".rw-new-message")
            box.fill(LOST)
            box.press("Enter")
            fan.locator(".rw-response", has_text="Noor").first.wait_for(timeout=30_000)

            # appears in Noor's list without a reload
            row = inbox.locator("#list-mine .conv").first
            row.wait_for(timeout=10_000)
            expect(row.locator(".badge")).to_have_text("urgent")
            expect(row.locator(".timer")).to_contain_text("min")
            row.click()
            expect(inbox.locator(".c-reasons")).to_contain_text("can't find my friend")
            expect(inbox.locator(".transcript")).to_contain_text("handed to Noor: safety")
            inbox.screenshot(path=str(shots / "inbox-conversation.png"))

            composer = inbox.locator(".composer textarea")
            composer.fill(REPLY)
            composer.press("Enter")
            # the unmodified widget shows no sender names: the text carries it
            fan.locator(".rw-response", has_text=f"Noor: {REPLY}").first.wait_for(timeout=10_000)
            expect(inbox.locator(".transcript .from-staff").last).to_contain_text(REPLY)
            expect(inbox.locator(".transcript .from-staff .sender").last).to_have_text(
                "Noor Visser")

            # untrusted fan text: shown as text, runs nothing
            box.fill(XSS)
            box.press("Enter")
            incoming = inbox.locator(".transcript .incoming .msg-text", has_text="help").last
            incoming.wait_for(timeout=10_000)
            assert incoming.text_content() == XSS
            assert inbox.evaluate("window.__pwned") is None
            assert inbox.locator(".transcript img").count() == 0

            inbox.set_viewport_size({"width": 390, "height": 844})
            inbox.screenshot(path=str(shots / "inbox-phone.png"), full_page=True)
            inbox.set_viewport_size({"width": 1280, "height": 800})

            inbox.click('[data-action="handback"]')
            fan.locator(".rw-response", has_text="Noor").nth(1).wait_for(timeout=10_000)
            box.fill("what time do you open?")
            box.press("Enter")
            try:
                fan.locator(".rw-response", has_text="23:30").first.wait_for(timeout=90_000)
            except Exception:  # say what the fan and the desk saw (it failed once under load)
                raise AssertionError(
                    "no opening time; the fan saw "
                    f"{fan.locator('.rw-response').all_text_contents()}; "
                    f"the desk: {_thread_state(switchboard)}") from None
            expect(inbox.locator("#list-mine .conv")).to_have_count(0, timeout=10_000)
            inbox.screenshot(path=str(shots / "inbox-lists.png"))
            fan.screenshot(path=str(shots / "fan-widget.png"))
        finally:
            browser.close()
    assert not errors, errors


def _thread_state(server: LiveServer) -> object:
    """The web chat threads' status and messages (sender, relay status), read from the
    switchboard's own database: enough to tell a lost message from a slow bot."""
    from sqlalchemy import select

    from api.conversations.models import Conversation, Message

    with server.app.state.services.db.session() as session:
        threads = []
        for c in session.scalars(select(Conversation)):
            rows = session.scalars(select(Message).where(Message.conversation_id == c.id))
            threads.append((c.id, c.status.value,
                            [(m.sender_type.value, m.relay_status and m.relay_status.value)
                             for m in rows]))
        return threads
