"""The supervisors' urgent banner in headless Chromium (fake Rasa, real triage): an urgent thread
nobody suitable can take appears live with a link and how long the fan has waited, is there
again after a reload, beeps only when the sound is switched on, and goes when someone takes it;
staff who are not supervisors see no banner."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.conftest import DEMO_PASSWORD, REPO_ROOT, LiveServer
from tests.api.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

LOST = "I can't find my friend and she isn't answering"
# Counts the oscillators the page starts (the beep), without any audio device.
COUNT_BEEPS = """
window.__beeps = 0;
const create = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1;
  return create.call(this);
};
"""


def sign_in(page, url: str, handle: str) -> None:
    page.goto(url + "/inbox")
    page.fill("input[name=handle]", handle)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/inbox$"))


@pytest.fixture
def welfare_only(make_settings, triage_engine, tmp_path):
    """The switchboard with staff.yml's safety topics for the welfare team alone (no fallback
    to general), so Laura, an online supervisor, is alerted instead of given the thread."""
    staff_yml = tmp_path / "staff.yml"
    text = (REPO_ROOT / "data" / "staff.yml").read_text()
    safety = ("safety:        {priority: urgent, first_response_minutes: 2,  "
              "fallback_skill: general}")
    assert safety in text
    staff_yml.write_text(text.replace(safety, safety.replace("general}", "null}")))
    server = LiveServer(make_settings(STAFF_FILE=str(staff_yml)), triage=triage_engine).start()
    yield server
    server.stop()


def test_urgent_banner_until_someone_takes_it(welfare_only, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url = welfare_only.url
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            ctx.add_init_script(COUNT_BEEPS)
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            sign_in(page, url, "laura")  # supervisor; no safety skill: cannot be routed it
            expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            page.select_option("#presence", "online")
            page.wait_for_timeout(300)
            banner = page.locator("#supervisor-alerts")
            expect(banner).to_be_hidden()
            sound = page.locator("#alert-sound")
            expect(sound).to_have_text("Alert sound: off")
            sound.click()  # on: a test beep, kept in localStorage
            expect(sound).to_have_text("Alert sound: on")
            assert page.evaluate("localStorage.getItem('inbox.alertSound')") == "on"
            assert page.evaluate("window.__beeps") == 1
            page.wait_for_timeout(2100)  # beeps are at least 2 s apart

            with httpx.Client(base_url=url, timeout=30) as client:
                r = client.post("/webhooks/rest/webhook", json={"sender": "fan-u", "message": LOST})
                [item] = r.json()
                assert item["custom"]["handoff"]["status"] == "queued"
                cid = item["custom"]["handoff"]["conversation_id"]

            alert = page.locator(f".urgent-alert[data-id='{cid}']")
            expect(alert).to_be_visible(timeout=10_000)
            expect(alert.locator("a")).to_have_attribute("href", f"#c{cid}")
            expect(alert).to_contain_text("lost_person")
            expect(alert).to_contain_text("nobody has it")
            expect(alert.locator(".urgent-wait")).to_contain_text("waiting")
            assert page.evaluate("window.__beeps") == 2  # the alert beeped
            page.screenshot(path=str(tmp_path / "urgent-banner.png"))

            page.reload()  # on page load: the urgent threads nobody has, from the lists
            expect(page.locator(f".urgent-alert[data-id='{cid}']")).to_be_visible(timeout=10_000)
            expect(page.locator("#alert-sound")).to_have_text("Alert sound: on")
            assert page.evaluate("window.__beeps") == 0  # no beep for what was already there
            page.locator(f".urgent-alert[data-id='{cid}'] a").click()  # opens the thread
            expect(page.locator("#pane .c-title")).to_contain_text("lost_person")
            assert page.url.endswith(f"#c{cid}")

            # Tom (not a supervisor) has no banner and no sound switch.
            tom_ctx = browser.new_context()
            tom = tom_ctx.new_page()
            sign_in(tom, url, "tom")
            assert tom.locator("#supervisor-alerts").count() == 0
            assert tom.locator("#alert-sound").count() == 0

            # Karim comes online and is given the thread: the banner goes.
            with httpx.Client(base_url=url, timeout=30) as client:
                r = client.post("/api/v1/auth/login",
                                json={"handle": "karim", "password": DEMO_PASSWORD})
                karim = {"Authorization": f"Bearer {r.json()['access_token']}"}
                r = client.put("/api/v1/staff/me/presence", json={"presence": "online"},
                               headers=karim)
                assert r.json()["conversations_moved"] == [cid]
            expect(page.locator(f".urgent-alert[data-id='{cid}']")).to_have_count(0,
                                                                                   timeout=10_000)
            expect(banner).to_be_hidden()
        finally:
            browser.close()
    assert errors == []
