"""The satisfaction survey in the real rasa-webchat widget (headless Chromium) against a live
switchboard and the fake Rasa: the fan presses a score button, writes a comment, is thanked;
a supervisor sees the answer in the inbox."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from api.conversations.models import Message
from api.csat import texts
from api.csat.models import CsatResponse
from api.csat.service import score_payload
from api.enums import MessageKind, RelayStatus
from tests.api.conftest import DEMO_PASSWORD, LiveServer, run_db
from tests.api.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]


@pytest.fixture
def switchboard(make_settings, triage_engine):
    server = LiveServer(make_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def test_web_chat_fan_scores_with_a_button_and_comments(switchboard, fake_rasa, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    staff = httpx.Client(base_url=switchboard.url, timeout=30)
    r = staff.post("/api/v1/auth/login", json={"handle": "tom", "password": DEMO_PASSWORD})
    tom = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert staff.put("/api/v1/staff/me/presence", json={"presence": "online"},
                     headers=tom).status_code == 200
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            fan = browser.new_page()
            fan.on("pageerror", lambda e: errors.append(str(e)))
            fan.goto(switchboard.url + "/")
            fan.click(".rw-launcher", timeout=15_000)
            box = fan.locator(".rw-new-message")
            box.wait_for(timeout=15_000)
            box.fill("human please")
            box.press("Enter")
            fan.locator(".rw-response", has_text="Tom").first.wait_for(timeout=30_000)

            [conv] = staff.get("/api/v1/conversations?assignee=me", headers=tom).json()
            cid = conv["id"]
            assert staff.post(f"/api/v1/conversations/{cid}/messages", headers=tom,
                              json={"text": "All sorted, enjoy the show!"}).status_code == 201
            assert staff.post(f"/api/v1/conversations/{cid}/resolve",
                              headers=tom).status_code == 200

            # the question, with the widget's own quick-reply buttons 1-5
            fan.locator(".rw-response", has_text=texts.QUESTION["en"]).wait_for(timeout=10_000)
            buttons = fan.locator(".rw-replies .rw-reply")
            expect(buttons).to_have_text(["1", "2", "3", "4", "5"], timeout=10_000)
            buttons.nth(3).click()
            fan.locator(".rw-response", has_text=texts.COMMENT["en"]).wait_for(timeout=10_000)
            box.fill("Tom was lovely")
            box.press("Enter")
            fan.locator(".rw-response", has_text=texts.THANKS["en"]).wait_for(timeout=10_000)
            fan.screenshot(path=str(tmp_path / "csat-widget.png"))

            # Laura (a supervisor) sees the answer in the inbox's thread view
            inbox = browser.new_context().new_page()
            inbox.on("pageerror", lambda e: errors.append(str(e)))
            inbox.goto(switchboard.url + "/inbox")
            inbox.fill("input[name=handle]", "laura")
            inbox.fill("input[name=password]", DEMO_PASSWORD)
            inbox.click("button[type=submit]")
            inbox.wait_for_url(re.compile(r"/inbox$"))
            inbox.goto(switchboard.url + f"/inbox#c{cid}")
            expect(inbox.locator(".side .csat")).to_have_text("4 / 5 — “Tom was lovely”",
                                                              timeout=10_000)
        finally:
            browser.close()
            staff.close()

    def check(s):
        return s.scalar(select(CsatResponse).where(CsatResponse.conversation_id == cid))

    answer = run_db(switchboard.app.state.services, check)
    assert (answer.score, answer.comment) == (4, "Tom was lovely")
    assert answer.channel.value == "webchat"
    # neither the score nor the comment went to the bot
    assert [c for c in fake_rasa.calls if "Tom was lovely" in str(c) or "csat" in str(c)] == []
    assert not errors, errors
    fan_messages = run_db(switchboard.app.state.services, lambda s: s.scalars(
        select(Message).where(Message.conversation_id == cid,
                              Message.kind == MessageKind.incoming).order_by(Message.id)).all())
    assert [(m.text, m.relay_status) for m in fan_messages[-2:]] == [
        (score_payload(4), RelayStatus.skipped), ("Tom was lovely", RelayStatus.skipped)]
