"""The operators' loop end to end, in headless Chromium, with real components only.

"An operator signed in to the console turns three messages the bot misunderstood into training
examples, trains, sees the comparison with the active model, activates the new model, and the
running bot now answers those messages correctly — and can roll back in one action."

A small baseline model is trained from a private copy of the Rasa project and served by the real
Rasa and action servers; the switchboard (its review, training and registry APIs and the console
page) runs under uvicorn against that copy, so the tracked data and models are never touched.
Slow by nature: two small trainings and two evaluations (about 5-10 minutes on two busy cores).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from actions.venue import Venue
from api.conversations.models import Message
from api.enums import SenderType
from api.registry import service as registry
from tests.api.conftest import BOT_FROZEN_NOW, REPO_ROOT, LiveServer, run_db
from tests.api.operator.conftest import small_config

pytestmark = [pytest.mark.browser, pytest.mark.rasa]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
RASA = REPO_ROOT / ".venv-bot" / "bin" / "rasa"
# `make screenshots` sets OPERATOR_SCREENSHOTS=docs/screenshots; by default they stay in /tmp.
SHOTS = Path(os.environ.get("OPERATOR_SCREENSHOTS") or "/tmp/operator-screenshots")

# Compliments about the line-up: no intent covers them, and the baseline falls back on each of
# these wordings (checked by hand: nlu_fallback, the best intent under config.yml's threshold;
# "this lineup is sick, cant wait", "the lineup this year is insane" and "omg what a lineup 🔥" are
# not among them — the baseline takes them for whats_on).
COMPLIMENTS = ("the artists you picked this summer are unreal", "love the lineup so much",
               "best lineup ever")
NEW_INTENT = "lineup_compliment"
ANSWER = "Glad you're excited! See you on the dance floor at {venue_name} 🌅"
FALLBACK_TEXT = "Sorry, I didn't quite get that"  # data/answers.yml fallback_first (en)
NOT_UNDERSTOOD = {"nlu_fallback", "out_of_scope"}

TRAIN_TIMEOUT_S = 900  # the baseline (`rasa train`, small config) on two busy cores
JOB_TIMEOUT_S = 1500  # validate + train + evaluate both models, in the switchboard
ACTIVATE_TIMEOUT_S = 240  # Rasa loads the model before it answers PUT /model
# Small models (40 epochs) are noisier between two trainings than the real one, so the gate is
# loosened through its two settings only (its logic is unit-tested elsewhere). Measured here:
# the candidate keeps macro-F1 (-0.001) but two intents end exactly on the 0.8 floor (0.909 ->
# 0.800: one of their ~5 test examples flips), so one more flip on another machine would fail
# the default gate. This test is about the loop, not about the small model's quality.
GATE = dict(GATE_MAX_MACRO_F1_DROP=0.05, GATE_MIN_INTENT_F1=0.5)


# -- fixtures ------------------------------------------------------------------------------------
def _bot_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false"}


@pytest.fixture
def baseline(bot_project, tmp_path) -> tuple[Path, Path]:
    """(small config, baseline model) trained from the untouched project copy."""
    config = small_config(bot_project)
    out = tmp_path / "baseline"
    log = tmp_path / "baseline-train.log"
    with open(log, "w") as handle:
        result = subprocess.run(
            [str(RASA), "train", "--config", str(config), "--domain", "domain.yml",
             "--data", "data/nlu", "data/rules", "--out", str(out),
             "--fixed-model-name", "baseline"],
            cwd=bot_project, env=_bot_env(), stdout=handle, stderr=subprocess.STDOUT,
            timeout=TRAIN_TIMEOUT_S)
    model = out / "baseline.tar.gz"
    assert result.returncode == 0 and model.is_file(), log.read_text()[-3000:]
    return config, model


@pytest.fixture
def bot(bot_project, baseline):
    """Rasa serving the baseline, and the action server reading the copy's answers and facts
    (including the answers of intents the console creates)."""
    from tests.support.rasa_servers import start_bot_servers

    data = bot_project / "data"
    with start_bot_servers(model=baseline[1], frozen_now=BOT_FROZEN_NOW, extra_env={
            "REVIEWED_ANSWERS_FILE": str(data / "answers.reviewed.yml"),
            "VENUE_FILE": str(data / "venue.yml"), "ANSWERS_FILE": str(data / "answers.yml")},
    ) as servers:
        yield servers


@pytest.fixture
def switchboard(operator_settings, bot, baseline, triage_engine):
    settings = operator_settings(RASA_URL=bot.rasa_url, RASA_TOKEN=bot.token,
                                 ACTION_SERVER_URL=bot.actions_url, RASA_TIMEOUT_S=30,
                                 BOT_TRAIN_CONFIG=str(baseline[0]), **GATE)
    server = LiveServer(settings, triage=triage_engine).start()
    run_db(server.app.state.services, registry.ensure_serving_flow, baseline=baseline[1],
           by="test")
    yield server
    server.stop()


# -- helpers -------------------------------------------------------------------------------------
def fan_says(server: LiveServer, sender: str, text: str) -> str:
    """What the bot answers a fan on the REST channel (all reply texts, joined)."""
    r = httpx.post(f"{server.url}/webhooks/rest/webhook",
                   json={"sender": sender, "message": text}, timeout=90)
    assert r.status_code == 200, r.text
    return "\n".join(item.get("text") or "" for item in r.json())


def intent_of(server: LiveServer, text: str) -> str | None:
    """The intent the serving model gave the latest fan message with this text."""
    def newest(session):
        return session.scalars(select(Message.intent).where(
            Message.text == text, Message.sender_type == SenderType.fan)
            .order_by(Message.id.desc())).first()
    return run_db(server.app.state.services, newest)


def active_model(server: LiveServer) -> tuple[int, str]:
    def read(session):
        model = registry.active(session)
        return model.id, model.source
    return run_db(server.app.state.services, read)


def poll(predicate, *, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return value


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"operator-{name}.png"), full_page=True)


# -- the test ------------------------------------------------------------------------------------
def test_operator_turns_misunderstood_messages_into_a_better_model(switchboard, bot_project):
    from playwright.sync_api import expect, sync_playwright

    venue_name = Venue.load(bot_project / "data" / "venue.yml").template_facts()["venue_name"]
    new_answer = ANSWER.format(venue_name=venue_name)
    baseline_id, source = active_model(switchboard)
    assert source == "baseline"

    # 1. Fans say what the baseline does not understand (one fan each: a second fallback in one
    # thread would offer a person, and a handed-off thread gets no bot answers).
    for n, text in enumerate(COMPLIMENTS):
        reply = fan_says(switchboard, f"fan-before-{n}", text)
        assert FALLBACK_TEXT in reply, (text, reply)
        assert intent_of(switchboard, text) in NOT_UNDERSTOOD, text

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            # 2. Sign in as the demo operator; the sign-in lands in the console.
            page.goto(switchboard.url + "/inbox/login?next=/operator")
            page.fill("input[name=handle]", "sam")
            page.fill("input[name=password]", "aurora-demo")
            page.click("button[type=submit]")
            page.wait_for_url("**/operator**", timeout=15_000)

            # 3. The three messages are in the review queue, as fallbacks.
            rows = page.locator("#queue-rows tr")
            expect(rows).to_have_count(3, timeout=15_000)
            for text in COMPLIMENTS:
                row = rows.filter(has_text=text)
                expect(row).to_have_count(1)
                expect(row).to_contain_text("fallback")
                expect(row).to_contain_text("×1")
            expect(page.locator("#count-new")).to_have_text("(3)")
            shot(page, "queue")

            # 4. The first becomes an example of a new intent, with the bot's answer.
            page.locator("#queue-rows [data-open]", has_text=COMPLIMENTS[0]).click()
            detail = page.locator("#detail")
            expect(detail.locator(".d-text")).to_have_text(COMPLIMENTS[0], timeout=10_000)
            # the conversation around it: the fan's message, then the bot asking to rephrase
            expect(detail.locator(".ctx.this")).to_contain_text(COMPLIMENTS[0])
            expect(detail.locator(".sightings")).to_contain_text(FALLBACK_TEXT)
            expect(detail.locator(".ranking li").first).to_be_visible()
            form = detail.locator("form.annotate")
            expect(form.get_by_label("Training example")).to_have_value(COMPLIMENTS[0])
            form.get_by_label("New intent", exact=True).check()
            expect(form.locator(".facts-hint")).to_contain_text("{venue_name}")
            form.get_by_label("Name", exact=True).fill(NEW_INTENT)
            form.get_by_label("Answer (English)", exact=True).fill(ANSWER)
            shot(page, "annotate")
            form.get_by_role("button", name="Add training example").click()
            expect(form.locator(".annotate-status")).to_contain_text(
                f"as an example of {NEW_INTENT}", timeout=15_000)
            expect(rows).to_have_count(2, timeout=10_000)

            # 5. The second with that intent, from its detail panel...
            page.locator("#queue-rows [data-open]", has_text=COMPLIMENTS[1]).click()
            expect(detail.locator(".d-text")).to_have_text(COMPLIMENTS[1], timeout=10_000)
            form = detail.locator("form.annotate")
            form.get_by_label("Intent", exact=True).fill(NEW_INTENT)
            form.get_by_role("button", name="Add training example").click()
            expect(form.locator(".annotate-status")).to_contain_text(
                f"as an example of {NEW_INTENT}", timeout=15_000)
            expect(rows).to_have_count(1, timeout=10_000)

            # ...the third with the bulk action (checkbox, intent, Annotate).
            rows.filter(has_text=COMPLIMENTS[2]).locator("input.pick").check()
            page.fill("#bulk-intent", NEW_INTENT)
            page.click("#bulk-annotate")
            expect(page.locator("#bulk-status")).to_have_text("Annotated 1.", timeout=15_000)
            expect(page.locator("#queue-empty")).to_be_visible(timeout=10_000)
            page.select_option("#filters select[name=status]", "annotated")
            expect(rows).to_have_count(3, timeout=10_000)
            expect(rows.filter(has_text=NEW_INTENT)).to_have_count(3)

            # 6. Train: the job's progress is shown live until it has scored the candidate.
            page.click("#tab-training")
            expect(page.locator("#panel-training")).to_be_visible()
            expect(page.locator("#change-rows tr")).to_have_count(4, timeout=10_000)
            page.click("#start-training")
            expect(page.locator("#job-status")).to_have_text("running", timeout=15_000)
            seen: list[tuple[str, float]] = []
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while True:
                status = page.locator("#job-status").text_content()
                phase = page.locator("#job-phase").text_content() or ""
                value = page.evaluate("document.getElementById('job-progress').value")
                seen.append((phase, value))
                if status != "running":
                    break
                assert time.monotonic() < deadline, f"training job still running: {seen[-5:]}"
                if len(seen) == 20:
                    shot(page, "training")
                page.wait_for_timeout(2_000)
            assert status == "succeeded", (page.locator("#job-error").text_content(),
                                           page.locator("#job-log").text_content())
            phases = {phase.rstrip("…") for phase, _ in seen}
            assert {"training", "evaluating"} <= phases, seen
            progress = [value for _, value in seen]
            assert progress == sorted(progress) and progress[-1] == 100, progress

            # 7. The comparison with the active model: tables, gate, plots, reviewed messages.
            evaluation = page.locator("#evaluation")
            expect(page.locator("#eval-body")).to_be_visible(timeout=15_000)
            summary = page.locator("#summary-table tbody tr")
            expect(summary).to_have_count(5)
            for label in ("Intent accuracy", "Macro-F1", "Out-of-scope caught",
                          "Conversation tests", "Reviewed messages right"):
                expect(summary.filter(has_text=label)).to_have_count(1)
            expect(summary.filter(has_text="Reviewed messages right")).to_contain_text("0 / 3")
            expect(summary.filter(has_text="Reviewed messages right")).to_contain_text("3 / 3")
            assert page.locator("#intent-table tbody tr").count() > 10
            expect(page.locator("#gate")).to_have_class("gate passed")
            expect(page.locator("#gate")).to_contain_text("Gate passed")
            reviewed = page.locator("#reviewed-table tbody tr")
            expect(reviewed).to_have_count(3)
            expect(reviewed.filter(has_text="now right")).to_have_count(3)
            # the plots are served by the API (cookie auth); polled from here, as a string
            # predicate in the page would be an eval, which the CSP forbids
            loaded = ("[...document.querySelectorAll('{} img')]"
                      ".every((i) => i.complete && i.naturalWidth > 0)")
            expect(page.locator("#plots img")).to_have_count(2)  # summary, per-intent F1
            poll(lambda: page.evaluate(loaded.format("#plots")), timeout=20,
                 what="the plots to load")
            evaluation.scroll_into_view_if_needed()
            shot(page, "evaluation")
            page.click("#confusion summary")  # both models' confusion matrices, folded
            expect(page.locator("#confusion-plots img")).to_have_count(2)
            poll(lambda: page.evaluate(loaded.format("#confusion-plots")), timeout=20,
                 what="the confusion matrices to load")

            # 8. Activate: busy while Rasa loads it, then the candidate serves.
            activate = page.locator("#eval-activate")
            expect(activate).to_be_enabled()
            activate.click()
            expect(page.locator("#eval-status")).to_contain_text("Loading model")
            expect(activate).to_be_disabled()
            expect(page.locator("#eval-status")).to_contain_text(
                "is now serving", timeout=ACTIVATE_TIMEOUT_S * 1000)
            candidate_id, source = active_model(switchboard)
            assert candidate_id != baseline_id and source == "console"

            # 9. The running bot now answers those messages (new fans, same words).
            for n, text in enumerate(COMPLIMENTS):
                reply = fan_says(switchboard, f"fan-after-{n}", text)
                assert new_answer in reply, (text, reply)
                assert intent_of(switchboard, text) == NEW_INTENT

            # 10. Roll back in one action: the baseline serves again.
            page.click("#tab-models")
            model_rows = page.locator("#model-rows tr")
            expect(model_rows).to_have_count(2, timeout=10_000)
            expect(page.locator("#model-rows tr.status-row-active")).to_have_attribute(
                "data-model", str(candidate_id))
            rollback = page.locator("#rollback")
            expect(rollback).to_have_text(f"Roll back to #{baseline_id}")
            shot(page, "models")
            rollback.click()
            expect(page.locator("#models-status")).to_contain_text(
                "Rolled back", timeout=ACTIVATE_TIMEOUT_S * 1000)
            assert active_model(switchboard) == (baseline_id, "baseline")
            expect(page.locator("#model-rows tr.status-row-active")).to_have_attribute(
                "data-model", str(baseline_id))
            expect(page.locator("#history")).to_contain_text("rolled back")
            reply = fan_says(switchboard, "fan-after-rollback", COMPLIMENTS[0])
            assert new_answer not in reply and FALLBACK_TEXT in reply, reply
            assert intent_of(switchboard, COMPLIMENTS[0]) in NOT_UNDERSTOOD
            shot(page, "rolled-back")
        finally:
            browser.close()

    blocked = [e for e in errors if "Content Security Policy" in e or "violates" in e]
    assert not blocked, blocked
    assert not errors, errors
