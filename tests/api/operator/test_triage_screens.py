"""Learning from staff in headless Chromium, without the bot (fake Rasa; a safety message hands
the thread to Noor): in the inbox Noor says a message "should have come to a person" (choosing
who in a small form, no native dialog) and another "did not need a person"; in the console Sam
sees them in the review queue and adds one to the triage data, which lands in the project
copy's data/triage/semantic/reviewed.tsv."""

from __future__ import annotations

import re

import httpx
import pytest

from api.review.triage_data import REVIEWED_TSV
from tests.api.conftest import DEMO_PASSWORD, LiveServer
from tests.api.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

HELLO = "hello there, quick one about the night"
LOST = "I can't find my friend and she isn't answering"


@pytest.fixture
def console_server(operator_settings, triage_engine):
    server = LiveServer(operator_settings(), triage=triage_engine).start()
    yield server
    server.stop()


def sign_in(page, base: str, handle: str, then: str) -> None:
    page.goto(base + "/inbox/login" + ("?next=/operator" if then == "/operator" else ""))
    page.fill("input[name=handle]", handle)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(then) + r"(#.*)?$"))


def test_staff_mark_triage_and_the_operator_adds_it(console_server, bot_project):
    from playwright.sync_api import expect, sync_playwright

    base = console_server.url
    errors: list[str] = []
    with httpx.Client(base_url=base, timeout=15) as api, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append("native dialog: " + d.message),
                                         d.dismiss()))
            sign_in(page, base, "noor", "/inbox")
            expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            page.select_option("#presence", "online")
            expect(page.locator("#presence")).to_have_attribute("data-current", "online")
            for text in (HELLO, LOST):
                r = api.post("/webhooks/rest/webhook", json={"sender": "fan-t", "message": text})
                assert r.status_code == 200
            page.locator("#list-mine .conv").first.click()
            expect(page.locator(".transcript")).to_contain_text(LOST)

            hello = page.locator(".msg.incoming", has_text=HELLO)
            form = page.locator(".person-flag-form")
            expect(form).to_be_hidden()
            hello.get_by_role("button", name="This should have come to a person…").click()
            expect(form).to_be_visible()
            expect(form.locator(".person-flag-text")).to_have_text(HELLO)
            expect(form.locator("optgroup")).to_have_count(2)
            form.locator("select").select_option("personal")
            form.get_by_role("button", name="Send to the operators").click()
            expect(form).to_be_hidden()
            expect(page.locator("#pane .status")).to_contain_text("grief / personal")
            expect(hello.get_by_role(
                "button", name="should have come to a person: grief / personal")).to_be_disabled()
            lost = page.locator(".msg.incoming", has_text=LOST)
            lost.get_by_role("button", name="This did not need a person").click()
            expect(lost.get_by_role("button", name="marked: did not need a person")) \
                .to_be_disabled()

            # The operators' console, in another browser context.
            console = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            console.on("pageerror", lambda e: errors.append(str(e)))
            sign_in(console, base, "sam", "/operator")
            # The first load (every new item) lands before filtering, so it cannot overwrite it.
            expect(console.locator("#queue-rows tr", has_text=LOST)).to_be_visible()
            console.select_option("#filters select[name=reason]", "triage_missed")
            row = console.locator("#queue-rows tr", has_text=HELLO)
            expect(row).to_contain_text("should have come to a person")
            expect(console.locator("#queue-rows tr")).to_have_count(1)
            row.locator("[data-open]").click()
            triage = console.locator("#detail .triage-form")
            expect(triage).to_be_visible()
            expect(triage.locator(".triage-said")).to_have_text(
                "Staff said: should have come to a person — grief / personal.")
            expect(triage.locator("select")).to_have_value("personal")
            triage.get_by_role("button", name="Add to triage data").click()
            expect(triage.locator(".triage-status")).to_contain_text("make train-triage")
            lines = (bot_project / REVIEWED_TSV).read_text().splitlines()
            assert re.fullmatch(r"personal\t[a-z]{2}\t" + re.escape(HELLO), lines[-1]), lines

            # The "did not need a person" item offers none.
            console.select_option("#filters select[name=reason]", "triage_unneeded")
            console.locator("#queue-rows tr", has_text=LOST).locator("[data-open]").click()
            expect(console.locator("#detail .triage-form select")).to_have_value("none")
        finally:
            browser.close()
    assert errors == []
