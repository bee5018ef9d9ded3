"""The inbox's small screens in headless Chromium, without the bot (a safety message skips it):
the transfer form (colleague select + note, no ``window.prompt``) and the canned-response
management dialog (add, edit, delete; fan-style text shown as text)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.conftest import DEMO_PASSWORD
from tests.api.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

LOST = "I can't find my friend and she isn't answering"


def bearer(client: httpx.Client, handle: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"handle": handle, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_transfer_form_and_canned_screen(live_server):
    from playwright.sync_api import expect, sync_playwright

    errors: list[str] = []
    with httpx.Client(base_url=live_server.url, timeout=15) as api, sync_playwright() as p:
        karim = bearer(api, "karim")
        api.put("/api/v1/staff/me/presence", json={"presence": "away"}, headers=karim)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append("native dialog: " + d.message),
                                         d.dismiss()))
            page.goto(live_server.url + "/inbox/login")
            page.fill("input[name=handle]", "noor")
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r"/inbox$"))
            expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            page.select_option("#presence", "online")
            expect(page.locator("#presence")).to_have_attribute("data-current", "online")
            r = api.post("/webhooks/rest/webhook", json={"sender": "fan-x", "message": LOST})
            assert r.status_code == 200
            page.locator("#list-mine .conv").first.click()
            expect(page.locator(".transcript")).to_contain_text(LOST)

            # transfer: a form with the colleague select and a note
            form = page.locator(".transfer-form")
            expect(form).to_be_hidden()
            page.click('[data-action="transfer"]')
            expect(form).to_be_visible()
            expect(form.locator("select option")).not_to_have_count(0)
            assert "noor" not in form.locator("select option").evaluate_all(
                "os => os.map((o) => o.value)")
            page.click('[data-action="transfer-cancel"]')
            expect(form).to_be_hidden()
            page.click('[data-action="transfer"]')
            form.locator("select").select_option("karim")
            form.locator("textarea").fill("she is at the main bar, phone dead")
            form.locator('button[type="submit"]').click()
            expect(page.locator("#pane .status")).to_contain_text("Transferred to Karim")
            conv = api.get("/api/v1/conversations", headers=karim).json()[0]
            assert conv["assignee"]["handle"] == "karim"
            ctx = api.get(f"/api/v1/conversations/{conv['id']}/context", headers=karim).json()
            assert any("main bar" in n["text"] for n in ctx["notes"])

            # canned responses: add, edit, delete in the dialog
            page.click("#open-canned")
            dialog = page.locator("#canned-dialog")
            expect(dialog).to_be_visible()
            expect(dialog.locator("#canned-list")).to_contain_text("None yet")
            dialog.locator("input[name=shortcut]").fill("where")
            dialog.locator("textarea[name=text]").fill("Hi {first_name}, where are you? <b>x</b>")
            dialog.locator('button[type="submit"]').click()
            row = dialog.locator(".canned-row", has_text="/where")
            expect(row).to_contain_text("<b>x</b>")  # shown as text
            row.locator("button", has_text="Edit").click()
            expect(dialog.locator("input[name=shortcut]")).to_have_value("where")
            dialog.locator("textarea[name=text]").fill("Hi {first_name}, where exactly?")
            dialog.locator('button[type="submit"]').click()
            expect(row).to_contain_text("where exactly?")
            # a canned response by someone else: a supervisor (Noor) may still edit it
            api.post("/api/v1/canned", json={"shortcut": "thanks", "text": "Thanks!"},
                     headers=karim)
            dialog.locator('[data-action="canned-close"]').click()
            page.click("#open-canned")
            expect(dialog.locator(".canned-row", has_text="/thanks")
                   .locator("button", has_text="Edit")).to_be_visible()
            delete = row.locator("button.danger")
            delete.click()
            expect(delete).to_contain_text("Delete /where?")
            delete.click()
            expect(dialog.locator(".canned-status")).to_contain_text("Deleted /where")
            expect(dialog.locator(".canned-row", has_text="/where")).to_have_count(0)
            shortcuts = [c["shortcut"] for c in api.get("/api/v1/canned", headers=karim).json()]
            assert shortcuts == ["thanks"]
        finally:
            browser.close()
    assert not errors, errors
