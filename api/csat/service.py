"""Fan satisfaction: who is asked, the survey in the channel's own way, the answers (no commits).

When a person resolves a conversation in which a person wrote to the fan, the fan gets one
system message with five score buttons (Messenger quick replies, web chat quick replies, REST
``buttons``). The fan's first message after it answers it when it is a score — a pressed score
button or a bare 1-5 — and then the first message after the comment prompt is the optional
comment. Anything else is an ordinary message (it reopens the thread as usual) and closes the
survey: nobody is asked twice. Answers never reach Rasa and reopen nothing. The survey's state
is on its prompts (payload ``csat``: "score"/"comment" open, then "answered", "closed" or
"expired"). Who is not asked: docs/handoff.md."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.conversations import service as conversations
from api.conversations.models import Conversation, Message
from api.csat import texts
from api.csat.models import CsatResponse
from api.db import utcnow
from api.enums import Channel, DeliveryStatus, MessageKind, Priority, SenderType
from api.events import Event, publish_on_commit

log = logging.getLogger(__name__)

SCORES = range(1, 6)
# A score button's payload: a Rasa-style intent command, so the channels treat it as a pressed
# button (api/flows.py command_of); it never reaches Rasa.
SCORE_COMMAND = "/csat"
SKIP_COMMENT = "/csat_skip"
SCORE_PAYLOAD = re.compile(r'^/csat(\{.*\})$')
BARE_SCORE = re.compile(r"^\s*([1-5])\s*$")
# A survey prompt stays open as long as a reply may go out as an answer on Messenger (24 h);
# a "5" days later is an ordinary message.
ANSWER_WINDOW = dt.timedelta(hours=24)
COMMENT_MAX_CHARS = 2000


@dataclass(frozen=True)
class SurveyRules:
    """What decides whether a resolved conversation is surveyed (from the settings)."""

    enabled: bool = True
    repeat_days: int = 30  # a fan asked this recently (any conversation) is not asked again

    @classmethod
    def from_settings(cls, settings) -> SurveyRules:
        return cls(enabled=settings.csat_enabled, repeat_days=settings.csat_repeat_days)


@dataclass(frozen=True)
class Answer:
    kind: Literal["score", "comment", "no_comment", "late"]  # late: a button of a closed survey
    score: int | None = None
    comment: str | None = None


def score_payload(score: int) -> str:
    return f'{SCORE_COMMAND}{{"score":{score}}}'


def score_buttons() -> list[dict[str, str]]:
    return [{"title": str(n), "payload": score_payload(n)} for n in SCORES]


def survey_of(session: Session, conversation_id: int) -> CsatResponse | None:
    return session.scalar(select(CsatResponse).where(
        CsatResponse.conversation_id == conversation_id))


def _last_staff_writer(session: Session, conversation_id: int) -> Message | None:
    return session.scalar(
        select(Message).where(Message.conversation_id == conversation_id,
                              Message.kind == MessageKind.outgoing,
                              Message.sender_type == SenderType.staff)
        .order_by(Message.id.desc()).limit(1))


def not_surveyed_because(session: Session, conversation: Conversation, *, rules: SurveyRules,
                         now: dt.datetime) -> str | None:
    """Why this just-resolved conversation gets no survey (for the log), or None."""
    if not rules.enabled:
        return "surveys are off (CSAT_ENABLED)"
    if survey_of(session, conversation.id) is not None:
        return "already surveyed"
    if (conversation.priority == Priority.urgent
            or "safety" in ((conversation.triage or {}).get("triggers") or [])):
        return "an urgent or safety matter"
    if _last_staff_writer(session, conversation.id) is None:
        return "no person wrote to the fan"
    if conversation.channel == Channel.messenger:
        last = conversation.identity.last_inbound_at
        if last is None or now - last > ANSWER_WINDOW:
            return "outside Messenger's 24-hour window (a survey never goes with a tag)"
    if rules.repeat_days > 0:
        since = now - dt.timedelta(days=rules.repeat_days)
        recent = session.scalar(
            select(CsatResponse.id).join(Conversation,
                                         Conversation.id == CsatResponse.conversation_id)
            .where(Conversation.fan_id == conversation.fan_id, CsatResponse.asked_at >= since)
            .limit(1))
        if recent is not None:
            return f"the fan was surveyed in the last {rules.repeat_days} days"
    return None


def ask(session: Session, *, conversation: Conversation, rules: SurveyRules) -> Message | None:
    """The survey for a conversation a person just resolved: the outgoing message to deliver
    (stored like any desk message), or None when this conversation is not surveyed."""
    now = utcnow()
    reason = not_surveyed_because(session, conversation, rules=rules, now=now)
    if reason is not None:
        log.info("conversation %s not surveyed: %s", conversation.id, reason)
        return None
    writer = _last_staff_writer(session, conversation.id)
    language = texts.lang(conversation.language)
    session.add(CsatResponse(
        conversation_id=conversation.id,
        staff_id=writer.staff_id if writer.staff_id else conversation.last_assignee_id,
        language=language, channel=conversation.channel, asked_at=now))
    msg = conversations.add_reply(
        session=session, conversation=conversation, sender_type=SenderType.system,
        text=texts.QUESTION[language], payload={"buttons": score_buttons(), "csat": "score"})
    publish_on_commit(session, Event("csat.asked", conversation.id, {"message_id": msg.id}))
    log.info("conversation %s: satisfaction survey sent", conversation.id)
    return msg


def is_survey_button(text: str | None) -> bool:
    stripped = (text or "").strip()
    return stripped == SKIP_COMMENT or SCORE_PAYLOAD.match(stripped) is not None


def parse_score(text: str | None, pressed: bool) -> int | None:
    """A score from a pressed score button (``pressed``: the channel or the offered buttons
    say so) or a bare 1-5; anything else is no score."""
    if not text:
        return None
    bare = BARE_SCORE.match(text)
    if bare:
        return int(bare.group(1))
    command = SCORE_PAYLOAD.match(text.strip()) if pressed else None
    if command is None:
        return None
    try:
        score = json.loads(command.group(1)).get("score")
    except (ValueError, AttributeError):
        return None
    return score if isinstance(score, int) and score in SCORES else None


# How far back the open survey prompt is looked for among the conversation's outgoing messages.
PROMPT_LOOKBACK = 20


def _handed_out(prompt: Message) -> bool:
    """Whether the fan can have seen a prompt. A REST client sees it only once it collected it
    (with the reply to its next message); push channels send it right after it is stored, and
    a fan's answer may arrive before the send is recorded (socket.io handles events
    concurrently), so there only a failed send means unseen."""
    if prompt.channel == Channel.rest:
        return prompt.delivery_status != DeliveryStatus.pending
    return prompt.delivery_status != DeliveryStatus.failed


def open_prompt(session: Session, conversation_id: int) -> Message | None:
    """The survey's question or comment prompt still waiting for the fan (payload ``csat``
    "score" or "comment"; prompts are system messages, the newest decides)."""
    rows = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id,
                              Message.kind == MessageKind.outgoing,
                              Message.sender_type == SenderType.system)
        .order_by(Message.id.desc()).limit(PROMPT_LOOKBACK))
    for msg in rows:
        state = (msg.payload or {}).get("csat")
        if state is not None:
            return msg if state in ("score", "comment") else None
    return None


def _settle(prompt: Message, state: str) -> None:
    prompt.payload = {**prompt.payload, "csat": state}  # a new dict: the JSON column sees it


def answer_of(session: Session, conversation: Conversation, text: str | None, *,
              pressed: bool) -> Answer | None:
    """Whether a fan's message (not stored yet) answers the survey of its conversation: the
    first message after the question was handed to the fan, when it is a score; then the first
    after the comment prompt. Any other message closes the survey (nobody is asked twice).

    "Handed to the fan": a REST client collects the question with the reply to its next
    message, which was written before the fan saw it and so neither answers nor closes it.
    """
    # A survey button pressed when no survey waits for it (pressed twice, or after the fan moved
    # on): thanked, never the bot's (Rasa knows no "csat" intent).
    late = Answer("late") if pressed and is_survey_button(text) else None
    if survey_of(session, conversation.id) is None:  # most threads: one indexed lookup
        return late
    prompt = open_prompt(session, conversation.id)
    if prompt is None or not _handed_out(prompt):
        return late
    if utcnow() - prompt.created_at > ANSWER_WINDOW:
        _settle(prompt, "expired")
        return late
    answer = None
    if prompt.payload["csat"] == "score":
        score = parse_score(text, pressed)
        answer = Answer("score", score=score) if score is not None else None
    elif pressed and is_survey_button(text):  # "No, thanks" (or a score button again)
        answer = Answer("no_comment")
    elif text:
        answer = Answer("comment", comment=text[:COMMENT_MAX_CHARS])
    _settle(prompt, "closed" if answer is None else "answered")
    return answer


def record(session: Session, *, conversation: Conversation, message: Message,
           answer: Answer) -> Message:
    """Store an answer (``message``: the fan's, already stored) and the fan's next prompt."""
    survey = survey_of(session, conversation.id)
    language = texts.lang(survey.language if survey else conversation.language)
    payload: dict[str, Any] = {}
    if answer.kind == "score":
        survey.score = answer.score
        survey.answered_at = message.created_at
        text = texts.COMMENT[language]
        payload = {"buttons": [{"title": texts.NO_COMMENT[language], "payload": SKIP_COMMENT}],
                   "csat": "comment"}
        publish_on_commit(session, Event("csat.answered", conversation.id,
                                         {"score": answer.score, "staff_id": survey.staff_id}))
    elif answer.kind == "comment":
        survey.comment = answer.comment
        survey.comment_at = message.created_at
        text = texts.THANKS[language]
        publish_on_commit(session, Event("csat.commented", conversation.id,
                                         {"staff_id": survey.staff_id}))
    else:
        text = texts.THANKS_NO_COMMENT[language]
    log.info("conversation %s: satisfaction %s recorded", conversation.id, answer.kind)
    return conversations.add_reply(session=session, conversation=conversation,
                                   sender_type=SenderType.system, text=text,
                                   payload=payload or None, reply_to_id=message.id)


def read(session: Session, conversation_id: int) -> dict[str, Any] | None:
    """The survey as the inbox shows it (None when the fan was not asked)."""
    survey = survey_of(session, conversation_id)
    if survey is None:
        return None
    return {"score": survey.score, "comment": survey.comment, "language": survey.language,
            "asked_at": survey.asked_at.isoformat(),
            "answered_at": survey.answered_at.isoformat() if survey.answered_at else None,
            "comment_at": survey.comment_at.isoformat() if survey.comment_at else None,
            "staff_id": survey.staff_id}
