"""Web chat delivery in the real rasa-webchat widget (headless Chromium): a staff reply sent
while the fan's page is closed appears exactly once when the page is opened again, and a reload
replays nothing already shown."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from api.conversations.models import ChannelIdentity, Message
from api.enums import DeliveryStatus, MessageKind
from tests.api.conftest import DEMO_PASSWORD, LiveServer, run_db
from tests.api.test_browser import ARGS, CHROMIUM
from tests.api.test_webchat_delivery import give_to_noor

pytestmark = [pytest.mark.browser]

REPLY = "Noor here, I am on my way to the bar."


@pytest.fixture
def switchboard(make_settings, pattern_triage):
    server = LiveServer(make_settings(WEBCHAT_PING_INTERVAL_S=0.5, WEBCHAT_PING_TIMEOUT_S=2,
                                      OUTBOX_POLL_S=0.1), triage=pattern_triage).start()
    yield server
    server.stop()


def open_chat(page, url: str):
    """Load the page and open the chat (the widget remembers whether it was open)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url + "/")
    box = page.locator(".rw-new-message")
    try:
        box.wait_for(timeout=3_000)
    except PlaywrightTimeout:
        page.click(".rw-launcher", timeout=15_000)
        box.wait_for(timeout=15_000)
    return box


def status_of(services, text: str) -> DeliveryStatus | None:
    return run_db(services, lambda s: s.scalar(select(Message.delivery_status).where(
        Message.kind == MessageKind.outgoing, Message.text == text)))


def until_delivered(services, text: str) -> None:
    deadline = time.monotonic() + 15
    while status_of(services, text) != DeliveryStatus.delivered:
        assert time.monotonic() < deadline, f"{text!r} was never proven delivered"
        time.sleep(0.1)


def test_reply_sent_while_page_closed_appears_once(switchboard, fake_rasa, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    services = switchboard.app.state.services
    staff = httpx.Client(base_url=switchboard.url, timeout=30)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context()  # one browser profile: the widget's stored session
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            box = open_chat(page, switchboard.url)
            box.fill("hello")
            box.press("Enter")
            page.locator(".rw-response", has_text="echo: hello").wait_for(timeout=15_000)
            until_delivered(services, "echo: hello")
            page.close()  # the fan closes the tab

            session_id = run_db(services, lambda s: s.scalar(select(ChannelIdentity.external_id)))
            cid = give_to_noor(services, session_id)
            r = staff.post("/api/v1/auth/login", json={"handle": "noor",
                                                       "password": DEMO_PASSWORD})
            noor = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = staff.post(f"/api/v1/conversations/{cid}/messages", headers=noor,
                           json={"text": REPLY})
            assert r.status_code == 201 and r.json()["delivery_status"] == "pending"

            page = context.new_page()  # the fan opens the page again
            page.on("pageerror", lambda e: errors.append(str(e)))
            open_chat(page, switchboard.url)
            shown = page.locator(".rw-response", has_text=REPLY)
            shown.first.wait_for(timeout=15_000)
            until_delivered(services, REPLY)
            expect(shown).to_have_count(1)
            expect(page.locator(".rw-response", has_text="echo: hello")).to_have_count(1)

            open_chat(page, switchboard.url)  # a reload: nothing already shown comes again
            page.locator(".rw-response", has_text="echo: hello").first.wait_for(timeout=15_000)
            time.sleep(2)  # several pings: a replay would have arrived
            expect(page.locator(".rw-response", has_text=REPLY)).to_have_count(1)
            page.screenshot(path=str(tmp_path / "replayed-once.png"))
        finally:
            browser.close()
            staff.close()
    assert not errors, errors
