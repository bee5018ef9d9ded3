"""Rasa custom actions: read the tracker, build the reply with ``replies``, hand it over.

Actions never call the switchboard (it may be waiting on this very turn). When a person is needed
or a report was taken, the reply carries a machine-readable message next to its text —
``{"handoff_request": {...}}`` or ``{"lost_property": {...}}`` — and the switchboard acts on it.
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import calendar, replies
from .answers import answer_language
from .desk import Desk, default_desk

logger = logging.getLogger(__name__)

FALLBACK_INTENTS = {"nlu_fallback", "out_of_scope"}
HANDOFF_REASONS = {
    "general": "the fan asked for a person",
    "vip": "VIP table booking",
    "press": "press enquiry",
}


class DeskAction(Action, abc.ABC):
    """An action with the venue desk (facts, texts, clock) injected; tests pass their own.

    Abstract (rasa-sdk registers every concrete Action subclass it finds, so bases must not be).
    """

    @abc.abstractmethod
    def name(self) -> str: ...

    def __init__(self, desk: Desk | None = None) -> None:
        self._desk = desk

    @property
    def desk(self) -> Desk:
        return self._desk or default_desk()

    def context(self, tracker: Tracker) -> replies.Context:
        return context_for(self.desk, tracker)


def context_for(desk: Desk, tracker: Tracker) -> replies.Context:
    """This turn's context, in the language to answer in (``answers.answer_language``)."""
    answers = desk.answers
    language = answer_language(latest_user_metadata(tracker), tracker.slots, answers.languages)
    return desk.context(language)


def latest_user_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata the switchboard sent with the fan's latest message (``language``,
    ``channel``, ``message_id``): ``tracker.latest_message["metadata"]``, else the latest user
    event's (the same thing on trackers that lack the first)."""
    metadata = (tracker.latest_message or {}).get("metadata")
    if isinstance(metadata, dict):
        return metadata
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [str(value) for value in tracker.get_latest_entity_values(entity)]


def utter_all(dispatcher: CollectingDispatcher, ctx: replies.Context, texts: list[str]) -> None:
    """Say the texts, with the "not in your language" line before the first English fallback."""
    for text in ctx.with_language_notice(texts):
        dispatcher.utter_message(text=text)


def utter(dispatcher: CollectingDispatcher, ctx: replies.Context, text: str,
          **kwargs: Any) -> None:
    """Say one text (``kwargs``: buttons), with the line when it fell back to English."""
    dispatcher.utter_message(text=ctx.with_language_notice([text])[0], **kwargs)


class ActionAnswer(DeskAction):
    """Plain fact answers, keyed by the intent (data/answers.yml)."""

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        if intent not in ctx.answers:
            logger.warning("no answer text for intent %s", intent)
            return await ActionFallback(self._desk).run(dispatcher, tracker, domain)
        utter_all(dispatcher, ctx, replies.fact_answer(ctx, intent))
        return []


class _TextAction(DeskAction):
    """An answer built from the fan's own words (dates, weekdays, event names)."""

    uses_event_names = True

    @property
    @abc.abstractmethod
    def action_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def build(self) -> Callable[..., list[str]]: ...

    def name(self) -> str:
        return self.action_name

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        text = tracker.latest_message.get("text") or ""
        events = entity_values(tracker, "event_name")
        if not events and not names_a_night(text, ctx.now):
            text = with_previous_night(text, tracker, ctx.now)
        if self.uses_event_names:
            texts = type(self).build(ctx, text, events)
        else:
            texts = type(self).build(ctx, text)
        utter_all(dispatcher, ctx, texts)
        return []


def names_a_night(text: str, now) -> bool:
    return calendar.resolve(text, now).kind is not calendar.QueryKind.NONE


def with_previous_night(text: str, tracker: Tracker, now) -> str:
    """A follow-up that names no night ("and how much is it?" after "are you open tonight?")
    is about the night the fan's previous message named."""
    users = [e for e in tracker.events if e.get("event") == "user"]
    if len(users) < 2:
        return text
    previous = users[-2].get("text") or ""
    return f"{text} ({previous})" if names_a_night(previous, now) else text


class ActionWhatsOn(_TextAction):
    action_name = "action_whats_on"
    build = replies.whats_on


class ActionTicketPrices(_TextAction):
    action_name = "action_ticket_prices"
    build = replies.ticket_prices


class ActionAreYouOpen(_TextAction):
    action_name = "action_are_you_open"
    build = replies.are_you_open
    uses_event_names = False


class ActionOpeningHours(_TextAction):
    action_name = "action_opening_hours"
    build = replies.opening_hours
    uses_event_names = False


class ActionVipTables(DeskAction):
    """Explain VIP tables, then offer the VIP host (booking is a person's job)."""

    def name(self) -> str:
        return "action_vip_tables"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        utter_all(dispatcher, ctx, replies.fact_answer(ctx, "vip_tables"))
        utter(
            dispatcher, ctx, ctx.say("vip_offer"),
            buttons=[
                {"title": ctx.say("button_book_vip"), "payload": "/affirm"},
                {"title": ctx.say("button_no_thanks"), "payload": "/deny"},
            ],
        )
        return [SlotSet("handoff_topic", "vip")]


class ActionPressEnquiry(DeskAction):
    """Press accreditation is the press officer's: answer, and ask for a person."""

    def name(self) -> str:
        return "action_press_enquiry"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        utter_all(dispatcher, ctx, replies.fact_answer(ctx, "press_enquiry"))
        dispatcher.utter_message(json_message=handoff_request("press"))
        return []


class ActionRequestHuman(DeskAction):
    """The fan wants a person (asked, or accepted an offer): say so, and ask the switchboard."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        topic = tracker.get_slot("handoff_topic") or "general"
        utter(dispatcher, ctx, ctx.say("request_human"))
        dispatcher.utter_message(json_message=handoff_request(topic))
        return [SlotSet("handoff_topic", None)]


def handoff_request(topic: str) -> dict[str, Any]:
    return {"handoff_request": {"topic": topic, "reason": HANDOFF_REASONS.get(topic, topic)}}


class ActionFallback(DeskAction):
    """Not understood: first ask to rephrase, then offer a person."""

    def name(self) -> str:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        if consecutive_fallbacks(tracker) <= 1:
            utter(dispatcher, ctx, ctx.say("fallback_first"))
            return []
        utter(
            dispatcher, ctx, ctx.say("fallback_offer_human"),
            buttons=[
                {"title": ctx.say("button_yes_person"), "payload": "/request_human"},
                {"title": ctx.say("button_no_thanks"), "payload": "/deny"},
            ],
        )
        return []


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the fan's latest messages in a row the bot did not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in FALLBACK_INTENTS:
            break
        count += 1
    return count


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


class ValidateLostPropertyForm(FormValidationAction):
    """Checks the lost-property report: a contact we can actually reach."""

    def __init__(self, desk: Desk | None = None) -> None:
        self._desk = desk

    def name(self) -> str:
        return "validate_lost_property_form"

    async def validate_lost_contact(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(slot_value or "")
        match = _EMAIL.search(text) or _PHONE.search(text)
        if match is None:
            ctx = context_for(self._desk or default_desk(), tracker)
            utter(dispatcher, ctx, ctx.say("invalid_lost_contact"))
            return {"lost_contact": None}
        return {"lost_contact": match.group(0).strip()}

    async def validate_lost_item(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                 tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = " ".join(str(slot_value or "").split())
        return {"lost_item": text[:200] or None}


LOST_PROPERTY_SLOTS = ("lost_item", "lost_when", "lost_description", "lost_contact")


class _AskLostSlot(DeskAction):
    """The form's question for one slot (texts in data/answers.yml, so they can be Spanish too)."""

    @property
    @abc.abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        utter(dispatcher, ctx, ctx.say(f"ask_{self.slot}"))
        return []


class ActionAskLostItem(_AskLostSlot):
    slot = "lost_item"


class ActionAskLostWhen(_AskLostSlot):
    slot = "lost_when"


class ActionAskLostDescription(_AskLostSlot):
    slot = "lost_description"


class ActionAskLostContact(_AskLostSlot):
    slot = "lost_contact"


class ActionSubmitLostProperty(DeskAction):
    """Confirm the report to the fan; hand it to the switchboard as a machine-readable message."""

    def name(self) -> str:
        return "action_submit_lost_property"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ctx = self.context(tracker)
        report = {
            "item": tracker.get_slot("lost_item") or "",
            "when": tracker.get_slot("lost_when") or "",
            "description": tracker.get_slot("lost_description") or "",
            "contact": tracker.get_slot("lost_contact") or "",
        }
        utter(dispatcher, ctx, replies.lost_property_summary(ctx, report))
        dispatcher.utter_message(json_message={"lost_property": report})
        logger.info("lost-property report taken for sender %s", tracker.sender_id)
        return [SlotSet(slot, None) for slot in LOST_PROPERTY_SLOTS]
