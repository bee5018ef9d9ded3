"""Every custom action as a function of a tracker: replies and events, no network."""

from __future__ import annotations

import pytest
import yaml
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as bot_actions

from .conftest import ROOT, make_tracker, user_event

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())


def rules_by_intent() -> dict[str, str]:
    """intent -> first action, from the simple one-step rules in data/rules/."""
    mapping: dict[str, str] = {}
    for path in sorted((ROOT / "data" / "rules").glob("*.yml")):
        for rule in yaml.safe_load(path.read_text()).get("rules", []):
            steps = rule["steps"]
            if "condition" not in rule and "intent" in steps[0] and "action" in steps[1]:
                mapping.setdefault(steps[0]["intent"], steps[1]["action"])
    return mapping


RULES = rules_by_intent()
FACT_INTENTS = sorted(intent for intent, action in RULES.items() if action == "action_answer")


async def run(action, tracker) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher.messages, events


def test_every_intent_has_a_rule() -> None:
    routed = set(RULES) | {"report_lost_item", "affirm", "deny"}
    assert set(DOMAIN["intents"]) <= routed | {"nlu_fallback"}


@pytest.mark.parametrize("intent", FACT_INTENTS)
async def test_fact_answers_for_every_routine_intent(intent, off_season_desk) -> None:
    messages, events = await run(bot_actions.ActionAnswer(off_season_desk),
                                 make_tracker("a question", intent))
    assert messages and all(message["text"] for message in messages)
    assert "{" not in messages[0]["text"], "unfilled placeholder"
    assert events == []


@pytest.mark.parametrize(
    ("intent", "fact"),
    [("dress_code", "Smart casual"), ("cloakroom_lockers", "10 euros small"),
     ("age_id", "18+"), ("re_entry", "not permitted"), ("payments", "cashless"),
     ("getting_there", "Discobus line 3"), ("parking", "400 spaces"),
     ("address", "Camí de sa Vorera 12"), ("refunds", "non-refundable"),
     ("name_change", "48 hours"), ("group_discount", "10% off"), ("early_bird", "35 euros"),
     ("lost_eticket", "My tickets"), ("accessibility", "Step-free"), ("jobs", "careers"),
     ("contact", "+34 971 000 417"), ("guest_list", "promoters"), ("water", "free tap water"),
     ("smoking", "outdoor smoking terrace"), ("photography", "press accreditation"),
     ("first_aid_welfare", "purple vests"), ("artist_booking", "press@aurora-ibiza.example"),
     ("lost_property_info", "30 days"), ("season_dates", "Friday 28 May 2027"),
     ("bag_policy", "A4"), ("where_to_buy", "QR code"), ("last_entry", "03:30")],
)
async def test_fact_answers_carry_the_fact(intent, fact, off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionAnswer(off_season_desk),
                            make_tracker("a question", intent))
    assert fact in " ".join(message["text"] for message in messages)


async def test_unknown_intent_falls_back(off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionAnswer(off_season_desk),
                            make_tracker("???", "no_such_intent"))
    assert "didn't quite get that" in messages[0]["text"]


async def test_are_you_open_tonight_off_season(off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionAreYouOpen(off_season_desk),
                            make_tracker("are you open tonight?", "are_you_open"))
    assert "closed" in messages[0]["text"] and "28 May 2027" in messages[0]["text"]


async def test_whats_on_uses_the_event_name_entity(off_season_desk) -> None:
    tracker = make_tracker("who plays at the full moon thing", "whats_on",
                           entities=[{"entity": "event_name", "value": "full moon"}])
    messages, _ = await run(bot_actions.ActionWhatsOn(off_season_desk), tracker)
    assert "Full Moon Terrace" in messages[0]["text"] and "Ana Quintana" in messages[0]["text"]


async def test_ticket_prices_for_a_weekday(off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionTicketPrices(off_season_desk),
                            make_tracker("how much is saturday", "ticket_prices"))
    assert "Nocturne" in messages[0]["text"] and "55 €" in messages[0]["text"]


async def test_opening_hours(off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionOpeningHours(off_season_desk),
                            make_tracker("what time do you open", "opening_hours"))
    assert "23:30" in messages[0]["text"]


async def test_request_human_asks_the_switchboard_for_a_person(off_season_desk) -> None:
    messages, events = await run(bot_actions.ActionRequestHuman(off_season_desk),
                                 make_tracker("i want a human", "request_human"))
    assert messages[0]["text"]
    assert messages[1]["custom"] == {
        "handoff_request": {"topic": "general", "reason": "the fan asked for a person"}}
    assert events == [SlotSet("handoff_topic", None)]


async def test_request_human_in_spanish(off_season_desk) -> None:
    """In the language the switchboard decided for the message (metadata.language)."""
    messages, _ = await run(bot_actions.ActionRequestHuman(off_season_desk),
                            make_tracker("quiero hablar con una persona", "request_human",
                                         metadata={"language": "es"}))
    assert messages[0]["text"] == "Claro, te paso con una persona de nuestro equipo."


async def test_vip_explains_then_offers_the_host(off_season_desk) -> None:
    messages, events = await run(bot_actions.ActionVipTables(off_season_desk),
                                 make_tracker("vip table price?", "vip_tables"))
    assert "1500" in messages[0]["text"]
    assert [button["payload"] for button in messages[-1]["buttons"]] == ["/affirm", "/deny"]
    assert events == [SlotSet("handoff_topic", "vip")]
    # accepting the offer asks for the VIP host, not a general person
    messages, _ = await run(bot_actions.ActionRequestHuman(off_season_desk),
                            make_tracker("yes", "affirm", slots={"handoff_topic": "vip"}))
    assert messages[1]["custom"]["handoff_request"]["topic"] == "vip"


async def test_press_enquiry_hands_off_to_press(off_season_desk) -> None:
    messages, _ = await run(bot_actions.ActionPressEnquiry(off_season_desk),
                            make_tracker("i'm a journalist", "press_enquiry"))
    assert "press@aurora-ibiza.example" in messages[0]["text"]
    assert messages[-1]["custom"]["handoff_request"]["topic"] == "press"


async def test_fallback_first_rephrase_then_offer_a_person(off_season_desk) -> None:
    first, _ = await run(bot_actions.ActionFallback(off_season_desk),
                         make_tracker("blorp", "nlu_fallback"))
    assert "say it another way" in first[0]["text"] and not first[0]["buttons"]
    second, _ = await run(
        bot_actions.ActionFallback(off_season_desk),
        make_tracker("zzz", "out_of_scope", history=[user_event("blorp", "nlu_fallback")]))
    assert [button["payload"] for button in second[0]["buttons"]] == ["/request_human", "/deny"]


async def test_fallback_count_restarts_after_an_understood_message(off_season_desk) -> None:
    history = [user_event("blorp", "nlu_fallback"), user_event("hi", "greet")]
    messages, _ = await run(bot_actions.ActionFallback(off_season_desk),
                            make_tracker("zzz", "nlu_fallback", history=history))
    assert not messages[0]["buttons"]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("you can reach me at fan@example.com thanks", "fan@example.com"),
     ("+34 600 123 456", "+34 600 123 456"), ("call me on 07700 900123", "07700 900123")],
)
async def test_lost_contact_must_be_reachable(typed, stored) -> None:
    validator = bot_actions.ValidateLostPropertyForm()
    result = await validator.validate_lost_contact(typed, CollectingDispatcher(), None, DOMAIN)
    assert result == {"lost_contact": stored}


async def test_lost_contact_rejected_without_email_or_phone(off_season_desk) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("just find it", "inform")
    result = await bot_actions.ValidateLostPropertyForm(off_season_desk).validate_lost_contact(
        "just find it", dispatcher, tracker, DOMAIN)
    assert result == {"lost_contact": None}
    assert "email address or a phone number" in dispatcher.messages[0]["text"]


async def test_lost_property_report_leaves_as_a_machine_readable_message(off_season_desk) -> None:
    slots = {"lost_item": "black iPhone 14", "lost_when": "saturday around 4am",
             "lost_description": "cracked screen, green case", "lost_contact": "fan@example.com"}
    messages, events = await run(bot_actions.ActionSubmitLostProperty(off_season_desk),
                                 make_tracker("fan@example.com", "inform", slots=slots))
    assert "black iPhone 14" in messages[0]["text"] and "30 days" in messages[0]["text"]
    assert messages[1]["custom"] == {"lost_property": {
        "item": "black iPhone 14", "when": "saturday around 4am",
        "description": "cracked screen, green case", "contact": "fan@example.com"}}
    assert {event["name"] for event in events} == set(slots)
    assert all(event["value"] is None for event in events)


@pytest.mark.parametrize("slot", bot_actions.LOST_PROPERTY_SLOTS)
async def test_the_form_asks_each_question(slot, off_season_desk) -> None:
    action = next(cls for cls in bot_actions._AskLostSlot.__subclasses__() if cls.slot == slot)
    messages, _ = await run(action(off_season_desk), make_tracker("i lost my phone",
                                                                  "report_lost_item"))
    assert "?" in messages[0]["text"]
    assert action(off_season_desk).name() in DOMAIN["actions"]


def test_the_action_server_registers_exactly_the_domain_actions() -> None:
    """What `rasa run actions` loads: every domain action, and no abstract base by mistake."""
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(executor.actions) == set(DOMAIN["actions"])


async def test_a_follow_up_price_question_is_about_the_night_just_asked_about(
        in_season_desk) -> None:
    """"are you open tonight?" then "how much is it?": tonight's price, not the price list."""
    alone, _ = await run(bot_actions.ActionTicketPrices(in_season_desk),
                         make_tracker("how much is the ticket?", "ticket_prices"))
    follow_up, _ = await run(bot_actions.ActionTicketPrices(in_season_desk), make_tracker(
        "how much is the ticket?", "ticket_prices",
        history=[user_event("are you open tonight?", "are_you_open")]))
    assert follow_up != alone
    unrelated, _ = await run(bot_actions.ActionTicketPrices(in_season_desk), make_tracker(
        "how much is the ticket?", "ticket_prices",
        history=[user_event("is there a dress code", "dress_code")]))
    assert unrelated == alone
