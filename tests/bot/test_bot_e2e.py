"""The real bot, end to end: the trained model, the Rasa server and the action server.

Starts both servers on free ports with the model for the current data (`make train`), with the
clock frozen on an off-season day, and talks to them over HTTP like a client would.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from tests.support.rasa_servers import start_bot_servers

from .conftest import ROOT

pytestmark = pytest.mark.rasa
OFF_SEASON = "2026-11-26T16:00:00"


@pytest.fixture(scope="module")
def venue_copy(tmp_path_factory):
    path = tmp_path_factory.mktemp("venue") / "venue.yml"
    shutil.copy(ROOT / "data" / "venue.yml", path)
    return path


@pytest.fixture(scope="module")
def bot(venue_copy):
    with start_bot_servers(frozen_now=OFF_SEASON,
                           extra_env={"VENUE_FILE": str(venue_copy)}) as servers:
        yield servers


def post(url: str, body: dict) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def say(bot, sender: str, text: str, **metadata) -> list[dict]:
    body: dict = {"sender": sender, "message": text}
    if metadata:
        body["metadata"] = metadata
    return post(f"{bot.rasa_url}/webhooks/rest/webhook", body)


def texts(replies: list[dict]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def test_are_you_open_tonight_in_the_off_season(bot) -> None:
    answer = texts(say(bot, "fan-open", "are you open tonight?"))
    assert "closed" in answer and "Friday 28 May 2027" in answer


def test_a_bare_weekday_price_with_the_reopening_date(bot) -> None:
    answer = texts(say(bot, "fan-friday", "how much is friday?"))
    assert "Casa Aurora" in answer and "50 €" in answer and "65 €" in answer
    assert "28 May 2027" in answer


def test_line_up_on_a_date(bot) -> None:
    answer = texts(say(bot, "fan-lineup", "who is playing on 17 July 2027"))
    assert "Aurora 20th Anniversary" in answer and "Petra Lind" in answer


def test_asking_for_a_person_carries_a_handoff_request(bot) -> None:
    replies = say(bot, "fan-human", "i want to talk to a real person")
    assert replies[0]["text"]
    assert {"custom": {"handoff_request": {"topic": "general",
                                           "reason": "the fan asked for a person"}},
            "recipient_id": "fan-human"} in replies


def test_the_lost_property_form_takes_a_whole_report(bot) -> None:
    sender = f"fan-lost-{uuid.uuid4().hex[:6]}"
    for text in ("i lost my phone in the club", "a black iphone 13",
                 "saturday around 4am near the terrace bar", "cracked screen, green case"):
        assert texts(say(bot, sender, text)).strip()
    assert "email address or a phone number" in texts(say(bot, sender, "just find it please"))
    replies = say(bot, sender, "my email is fan.test@example.com")
    report = next(reply["custom"]["lost_property"] for reply in replies if "custom" in reply)
    assert report == {"item": "a black iphone 13",
                      "when": "saturday around 4am near the terrace bar",
                      "description": "cracked screen, green case",
                      "contact": "fan.test@example.com"}


def test_the_switchboard_channel_returns_replies_and_the_parse(bot) -> None:
    result = post(f"{bot.rasa_url}/webhooks/switchboard/webhook",
                  {"sender": "fan-sb", "message": "what's the dress code?",
                   "metadata": {"message_id": "m-123", "channel": "webchat", "language": "en"}})
    assert result["message_id"] == "m-123"
    assert "Smart casual" in texts(result["messages"])
    assert result["parse"]["intent"]["name"] == "dress_code"
    assert result["parse"]["intent_ranking"]
    assert result["parse"]["active_loop"] is None  # not answering a form
    # the message id is on the tracker's user event, so a retried turn can be recognised
    with urllib.request.urlopen(
            f"{bot.rasa_url}/conversations/fan-sb/tracker?token={bot.token}") as response:
        events = json.loads(response.read())["events"]
    assert any(e["event"] == "user" and e.get("message_id") == "m-123" for e in events)


def test_the_switchboard_channel_refuses_bad_input(bot) -> None:
    request = urllib.request.Request(f"{bot.rasa_url}/webhooks/switchboard/webhook",
                                     data=b'{"sender": "", "message": 5}',
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 400


def test_spanish_greeting_and_price(bot) -> None:
    """The language is the switchboard's decision (metadata.language); the bot never guesses."""
    assert texts(say(bot, "fan-es", "hola", language="es")).startswith(("¡Hola!", "¡Buenas!"))
    answer = texts(say(bot, "fan-es", "cuanto cuesta la entrada el viernes?", language="es"))
    assert "Casa Aurora" in answer and "taquilla" in answer


def test_without_a_language_the_bot_answers_in_english(bot) -> None:
    assert texts(say(bot, "fan-no-lang", "hola")).startswith(("Hey!", "Hi there!"))


def test_a_changed_fact_is_live_without_a_restart(bot, venue_copy) -> None:
    raw = yaml.safe_load(venue_copy.read_text())
    raw["on_site"]["lockers"] = "12 euros any size, all night"
    time.sleep(0.01)
    venue_copy.write_text(yaml.safe_dump(raw, allow_unicode=True))
    assert "12 euros any size" in texts(say(bot, "fan-lockers", "how much are lockers?"))


def test_the_switchboard_channel_swaps_the_model_without_a_restart(bot, tmp_path) -> None:
    """PUT /webhooks/switchboard/model: token required, bad files refused (the old model keeps
    answering), a good one served at once, and the conversation goes on."""
    import gzip

    def put(token: str, body: dict) -> int:
        request = urllib.request.Request(
            f"{bot.rasa_url}/webhooks/switchboard/model?token={token}", method="PUT",
            data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def served() -> str:
        with urllib.request.urlopen(f"{bot.rasa_url}/status?token={bot.token}") as response:
            return json.loads(response.read())["model_file"]

    copy = tmp_path / "same-model-again.tar.gz"
    with gzip.open(bot.model, "rb") as src, open(copy, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=1) as dst:
        shutil.copyfileobj(src, dst)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(gzip.compress(b"not a model"))
    sender = f"swap-{uuid.uuid4().hex[:6]}"
    assert texts(say(bot, sender, "hello"))

    assert put("wrong", {"model_file": str(copy)}) == 401
    assert put(bot.token, {"model_file": str(tmp_path / "missing.tar.gz")}) == 400
    assert put(bot.token, {"model_file": str(broken)}) == 400
    assert bot.model.name in served() or bot.model.name.removesuffix(".tar.gz") in served()
    assert put(bot.token, {"model_file": str(copy)}) == 204
    assert "same-model-again" in served()
    assert texts(say(bot, sender, "what's the dress code?"))
    assert put(bot.token, {"model_file": str(bot.model)}) == 204
