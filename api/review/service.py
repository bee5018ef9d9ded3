"""The review queue: collect what the bot missed from real conversations, group it, and turn an
operator's annotation into training data (no commits here except in the ``*_flow`` units of
work, which write the training files first and commit the record of them after)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.cluster import service as cluster
from api.conversations.models import Conversation, Fan, Message
from api.db import utcnow
from api.enums import RelayStatus, SenderType
from api.inbox.models import MessageFlag
from api.review import pii, training_data, triage_data
from api.review.models import (
    ReviewCursor,
    ReviewItem,
    ReviewMessage,
    ReviewReason,
    ReviewStatus,
    TrainingDataChange,
)
from api.triage.semantic import NONE

NOT_UNDERSTOOD = frozenset({"nlu_fallback", "out_of_scope"})
# Handoff triggers that mean "the bot could not cope", as opposed to a topic a person owns.
COMPLEX_TRIGGERS = frozenset({"fallback", "repeated", "several_cases"})
COMPLEX_CONTEXT = 5  # the bot-handled fan messages before a complex handoff that are queued
# A staff flag's kind -> the reason it gives its message in the queue.
FLAG_REASONS = {"bot": ReviewReason.flagged.value,
                "needs_person": ReviewReason.triage_missed.value,
                "no_person_needed": ReviewReason.triage_unneeded.value}
TRIAGE_REASONS = frozenset({ReviewReason.triage_missed.value,
                            ReviewReason.triage_unneeded.value})
_WORD = re.compile(r"[\w<>']+")
_LANG = re.compile(r"^[a-z]{2}$")


class NotFound(LookupError):
    pass


class PersonalData(ValueError):
    """The example still contains personal data and the operator has not said it is not."""

    def __init__(self, findings: list[pii.Finding]) -> None:
        super().__init__("redact the personal data first (or confirm it is not personal)")
        self.findings = findings


# -- pure rules ---------------------------------------------------------------------------------
def fingerprint(text: str) -> str:
    """Same question, same row: personal data, case, punctuation and spacing do not count."""
    words = _WORD.findall(pii.redact(text).lower())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:40]


def reasons_for_turn(intent: str | None, confidence: float | None,
                     low_confidence: float) -> list[str]:
    """Why a bot turn belongs in the queue (empty: the bot was sure)."""
    if intent in NOT_UNDERSTOOD:
        return [ReviewReason.fallback.value]
    if confidence is not None and confidence < low_confidence:
        return [ReviewReason.low_confidence.value]
    return []


def ranking_of(parse: dict[str, Any] | None, top: int = 5) -> list[dict[str, Any]]:
    ranking = (parse or {}).get("intent_ranking") or []
    return [{"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0), 4)}
            for r in ranking[:top] if r.get("name")]


# -- collecting ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Collected:
    messages: int
    items_touched: int


def collect(session: Session, *, low_confidence: float) -> Collected:
    """Queue every fan message the bot missed since the last run: fallbacks, low confidence,
    threads handed off because the bot struggled, and staff flags. Idempotent."""
    cursor = session.get(ReviewCursor, 1)
    if cursor is None:
        cursor = ReviewCursor(id=1, last_message_id=0)
        session.add(cursor)
        session.flush()
    touched: set[int] = set()
    queued = 0

    # A message still waiting for its bot turn stops the cursor, so it is read once answered.
    first_pending = session.scalar(select(func.min(Message.id)).where(
        Message.id > cursor.last_message_id, Message.sender_type == SenderType.fan,
        Message.relay_status == RelayStatus.pending))
    answered = select(Message).where(Message.id > cursor.last_message_id,
                                     Message.sender_type == SenderType.fan,
                                     Message.relay_status == RelayStatus.answered)
    if first_pending is not None:
        answered = answered.where(Message.id < first_pending)
    turns = session.scalars(answered.order_by(Message.id).limit(5000)).all()
    for message in turns:
        reasons = reasons_for_turn(message.intent, message.intent_confidence, low_confidence)
        if reasons and _enqueue(session, message, reasons, touched):
            queued += 1
    if turns:
        cursor.last_message_id = turns[-1].id
    elif first_pending is None:
        last = session.scalar(select(func.max(Message.id)))
        cursor.last_message_id = max(cursor.last_message_id, last or 0)

    since = cursor.handoffs_seen_until
    threads = select(Conversation).where(Conversation.triage.is_not(None))
    if since is not None:
        threads = threads.where(Conversation.updated_at >= since)
    newest = since
    for conversation in session.scalars(threads):
        newest = max(newest or conversation.updated_at, conversation.updated_at)
        triggers = set((conversation.triage or {}).get("triggers") or [])
        if not triggers & COMPLEX_TRIGGERS:
            continue
        handled = session.scalars(
            select(Message).where(Message.conversation_id == conversation.id,
                                  Message.sender_type == SenderType.fan,
                                  Message.relay_status == RelayStatus.answered)
            .order_by(Message.id.desc()).limit(COMPLEX_CONTEXT)).all()
        for message in handled:
            if _enqueue(session, message, [ReviewReason.complex_handoff.value], touched):
                queued += 1
    cursor.handoffs_seen_until = newest

    for flag in session.scalars(select(MessageFlag).where(MessageFlag.status == "new")
                                .order_by(MessageFlag.id)):
        message = session.get(Message, flag.message_id)
        reason = FLAG_REASONS.get(flag.kind, ReviewReason.flagged.value)
        if message is not None and _enqueue(session, message, [reason], touched,
                                            note=flag.reason or None):
            queued += 1
        flag.status = "queued"
    session.flush()
    return Collected(queued, len(touched))


def _enqueue(session: Session, message: Message, reasons: list[str], touched: set[int],
             note: str | None = None) -> bool:
    """Add ``message`` to its item (created on first sight); True when something changed."""
    if not (message.text or "").strip():
        return False
    link = session.scalar(select(ReviewMessage).where(ReviewMessage.message_id == message.id))
    if link is not None:
        merged = sorted(set(link.reasons) | set(reasons))
        item = session.get(ReviewItem, link.item_id)
        if merged == sorted(link.reasons) and set(reasons) <= set(item.reasons):
            return False
        link.reasons = merged
        link.note = note or link.note
    else:
        fp = fingerprint(message.text)
        item = session.scalar(select(ReviewItem).where(ReviewItem.fingerprint == fp))
        if item is None:
            item = ReviewItem(fingerprint=fp, text=message.text.strip(), status=ReviewStatus.new,
                              language=_language(session, message), reasons=[], occurrences=0,
                              ranking=[], first_seen_at=message.created_at,
                              last_seen_at=message.created_at)
            session.add(item)
            session.flush()
        session.add(ReviewMessage(item_id=item.id, message_id=message.id,
                                  conversation_id=message.conversation_id, reasons=list(reasons),
                                  note=note))
        item.occurrences += 1
        if message.created_at >= item.last_seen_at or item.predicted_intent is None:
            # The newest sighting shows what the model serving now makes of it.
            item.last_seen_at = max(item.last_seen_at, message.created_at)
            item.predicted_intent = message.intent
            item.confidence = message.intent_confidence
            item.ranking = ranking_of(message.parse)
    item.reasons = sorted(set(item.reasons) | set(reasons))
    if set(reasons) & set(FLAG_REASONS.values()) and item.status == ReviewStatus.ignored:
        item.status = ReviewStatus.new  # staff disagree with the earlier "ignore"
    touched.add(item.id)
    return True


def _language(session: Session, message: Message) -> str | None:
    """The message's own decided language; the thread's for messages stored before that."""
    if message.language:
        return message.language
    return session.scalar(select(Conversation.language)
                          .where(Conversation.id == message.conversation_id))


# -- reading ------------------------------------------------------------------------------------
SORTS = {"count": (ReviewItem.occurrences.desc(), ReviewItem.last_seen_at.desc()),
         "recent": (ReviewItem.last_seen_at.desc(),),
         "confidence": (ReviewItem.confidence.asc(),)}


def list_items(session: Session, *, status: str | None = "new", reason: str | None = None,
               intent: str | None = None, q: str | None = None, sort: str = "count",
               limit: int = 50, offset: int = 0) -> dict[str, Any]:
    query = select(ReviewItem)
    if status:
        query = query.where(ReviewItem.status == ReviewStatus(status))
    if intent:
        query = query.where(or_(ReviewItem.predicted_intent == intent,
                                ReviewItem.intent == intent))
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(or_(func.lower(ReviewItem.text).like(like),
                                func.lower(ReviewItem.example_text).like(like)))
    rows = session.scalars(query.order_by(*SORTS.get(sort, SORTS["count"]), ReviewItem.id)).all()
    if reason:
        rows = [r for r in rows if reason in (r.reasons or [])]
    counts = dict(session.execute(
        select(ReviewItem.status, func.count()).group_by(ReviewItem.status)).all())
    page = rows[offset:offset + limit]
    said = staff_triage(session, [r.id for r in page])
    return {"total": len(rows), "items": [item_row(r, said.get(r.id)) for r in page],
            "counts": {s.value: counts.get(s, 0) for s in ReviewStatus}}


def staff_triage(session: Session, item_ids: Sequence[int]) -> dict[int, list[str]]:
    """What staff said triage should have done with each item's messages: triage labels
    (``none``: "did not need a person"), most often said first."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(ReviewMessage.item_id, MessageFlag.kind, MessageFlag.label)
        .join(MessageFlag, MessageFlag.message_id == ReviewMessage.message_id)
        .where(ReviewMessage.item_id.in_(set(item_ids)),
               MessageFlag.kind.in_(("needs_person", "no_person_needed")))
        .order_by(MessageFlag.id))
    said: dict[int, Counter[str]] = {}
    for item_id, kind, label in rows:
        said.setdefault(item_id, Counter())[
            label if kind == "needs_person" and label else NONE] += 1
    return {i: [label for label, _ in counts.most_common()] for i, counts in said.items()}


def item_row(item: ReviewItem, staff_labels: list[str] | None = None) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "status": item.status.value,
            "reasons": item.reasons, "occurrences": item.occurrences,
            "predicted_intent": item.predicted_intent, "confidence": item.confidence,
            "ranking": item.ranking, "language": item.language,
            "first_seen_at": item.first_seen_at, "last_seen_at": item.last_seen_at,
            "intent": item.intent, "example_text": item.example_text,
            "annotated_by": item.annotated_by, "annotated_at": item.annotated_at,
            "triage_label": triage_data.label_of(item.intent),
            "staff_triage": staff_labels or [],
            "personal_data": [f.kind for f in pii.find(item.text)]}


def item_detail(session: Session, *, item_id: int, context: int = 3) -> dict[str, Any]:
    item = _item(session, item_id)
    links = session.scalars(select(ReviewMessage).where(ReviewMessage.item_id == item.id)
                            .order_by(ReviewMessage.id.desc()).limit(5)).all()
    names = _known_names(session, [link.conversation_id for link in links])
    findings = pii.find(item.text, names)
    sightings = []
    for link in links:
        around = session.scalars(
            select(Message).where(Message.conversation_id == link.conversation_id,
                                  Message.id >= link.message_id - 50,
                                  Message.id <= link.message_id + 50)
            .order_by(Message.id)).all()
        at = next((i for i, m in enumerate(around) if m.id == link.message_id), 0)
        window = around[max(0, at - context):at + context]
        sightings.append({
            "message_id": link.message_id, "conversation_id": link.conversation_id,
            "reasons": link.reasons, "note": link.note, "at": link.created_at,
            "context": [{"id": m.id, "sender": m.sender_type.value, "text": m.text,
                         "intent": m.intent, "confidence": m.intent_confidence,
                         "this": m.id == link.message_id} for m in window]})
    return {**item_row(item, staff_triage(session, [item.id]).get(item.id)),
            "personal_data": [{"kind": f.kind, "start": f.start, "end": f.end, "text": f.text}
                              for f in findings],
            "suggested_text": training_data.example_text(pii.redact(item.text, names)),
            "sightings": sightings}


def _known_names(session: Session, conversation_ids: Sequence[int]) -> tuple[str, ...]:
    if not conversation_ids:
        return ()
    rows = session.scalars(
        select(Fan.display_name).join(Conversation, Conversation.fan_id == Fan.id)
        .where(Conversation.id.in_(set(conversation_ids)), Fan.display_name.is_not(None)))
    return tuple(sorted({r for r in rows if r}))


def _item(session: Session, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"review item {item_id} not found")
    return item


# -- annotating ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewIntent:
    name: str
    answer_en: str
    answer_es: str | None = None


def annotate_flow(session: Session, *, item_id: int, by: str, project: Path,
                  intent: str | None, text: str | None, new_intent: NewIntent | None,
                  confirm_no_personal_data: bool, fact_names: set[str]) -> dict[str, Any]:
    """Turn an item into a training example of ``intent`` (or of a new intent with its answer).

    The example is the operator's (redacted) text; personal data still in it stops the
    annotation unless the operator confirms it is not personal."""
    item = _item(session, item_id)
    example = _cleared_example(session, item, training_data.example_text(
        text if text is not None else item.text), confirm_no_personal_data)
    with cluster.serialised(session, cluster.TRAINING_DATA_LOCK):
        # Every refusal comes before the first file is touched.
        target = new_intent.name if new_intent is not None else intent
        if not target:
            raise training_data.TrainingDataError("choose an intent or create one")
        if new_intent is not None:
            training_data.check_new_intent(
                project, name=new_intent.name, answer_en=new_intent.answer_en,
                answer_es=new_intent.answer_es, fact_names=fact_names)
        replacing = item.example_text if item.status == ReviewStatus.annotated else None
        training_data.check_example(project, intent=target, text=example, replacing=replacing,
                                    new_intent=new_intent is not None)
        if replacing:
            _remove_example(session, item, by, project)
        if new_intent is not None:
            files = training_data.add_intent(
                project, name=new_intent.name, answer_en=new_intent.answer_en,
                answer_es=new_intent.answer_es, fact_names=fact_names)
            session.add(TrainingDataChange(by=by, action="new_intent", intent=new_intent.name,
                                           example_text=None, item_id=item.id, files=files))
            intent = new_intent.name
        now = utcnow()
        # The item's decided language (null when it has none, e.g. collected before messages
        # had one), so a Spanish or German fan's wording is visibly that language's example.
        language = item.language if item.language and _LANG.match(item.language) else None
        files = training_data.add_example(project, intent=intent, text=example, metadata={
            "review_item": item.id, "added_by": by, "added_at": now.isoformat(timespec="seconds"),
            "language": language})
        session.add(TrainingDataChange(by=by, action="add_example", intent=intent,
                                       example_text=example, item_id=item.id, files=files))
        item.status = ReviewStatus.annotated
        item.intent, item.example_text = intent, example
        item.annotated_by, item.annotated_at = by, now
        session.commit()
    return item_row(item)


def triage_flow(session: Session, *, item_id: int, by: str, project: Path, label: str,
                text: str | None, lang: str | None, confirm_no_personal_data: bool,
                default_language: str) -> dict[str, Any]:
    """"Add to triage data": the (redacted) wording of an item staff marked ("should have come
    to a person" / "did not need a person") becomes ``label<TAB>lang<TAB>text`` in
    ``data/triage/semantic/reviewed.tsv``, with the operator's ``label`` (``none``: no person
    needed). Personal data stops it exactly as in :func:`annotate_flow`."""
    item = _item(session, item_id)
    if not set(item.reasons) & TRIAGE_REASONS:
        raise training_data.TrainingDataError(
            "only messages staff marked as \"should have come to a person\" or \"did not need "
            "a person\" go into the triage data")
    example = _cleared_example(session, item, triage_data.example_text(
        text if text is not None else item.text), confirm_no_personal_data)
    language = next((x for x in (lang, item.language) if x and _LANG.match(x)), default_language)
    with cluster.serialised(session, cluster.TRAINING_DATA_LOCK):
        # Every refusal comes before the first file is touched.
        earlier = triage_data.label_of(item.intent) if item.status == ReviewStatus.annotated \
            else None
        triage_data.check_example(project, label=label, text=example,
                                  replacing=item.example_text if earlier else None)
        if item.status == ReviewStatus.annotated:
            _remove_example(session, item, by, project)
        files = triage_data.add_example(project, label=label, lang=language, text=example)
        session.add(TrainingDataChange(by=by, action="add_triage_example", intent=label,
                                       example_text=example, item_id=item.id, files=files))
        item.status = ReviewStatus.annotated
        item.intent, item.example_text = triage_data.intent_for(label), example
        item.annotated_by, item.annotated_at = by, utcnow()
        session.commit()
    return {**item_row(item), "example_language": language,
            "file": str(triage_data.REVIEWED_TSV)}


def _remove_example(session: Session, item: ReviewItem, by: str, project: Path) -> None:
    label = triage_data.label_of(item.intent)
    if label is not None:  # the item went into triage's data
        files = triage_data.remove_example(project, text=item.example_text or "")
        action, intent = "remove_triage_example", label
    else:
        files = training_data.remove_example(project, text=item.example_text or "")
        action, intent = "remove_example", item.intent or ""
    if files:
        session.add(TrainingDataChange(by=by, action=action, intent=intent,
                                       example_text=item.example_text, item_id=item.id,
                                       files=files))


def set_status_flow(session: Session, *, item_ids: Iterable[int], status: str, by: str,
                    project: Path) -> dict[str, Any]:
    """Ignore items, or put them back to new (an annotated item's example leaves the data)."""
    target = ReviewStatus(status)
    if target == ReviewStatus.annotated:
        raise training_data.TrainingDataError("annotate an item to mark it annotated")
    changed = []
    with cluster.serialised(session, cluster.TRAINING_DATA_LOCK):
        for item_id in item_ids:
            item = _item(session, item_id)
            if item.status == target:
                continue
            if item.status == ReviewStatus.annotated:
                _remove_example(session, item, by, project)
                item.intent = item.example_text = None
            item.status = target
            item.annotated_by, item.annotated_at = by, utcnow()
            changed.append(item.id)
        session.commit()
    return {"changed": changed}


def bulk_annotate_flow(session: Session, *, item_ids: Iterable[int], intent: str, by: str,
                       project: Path) -> dict[str, Any]:
    """Annotate several items with one intent, as they are; items with personal data are left
    for one-by-one redaction, items that conflict are reported."""
    done, skipped = [], []
    for item_id in item_ids:
        try:
            annotate_flow(session, item_id=item_id, by=by, project=project, intent=intent,
                          text=None, new_intent=None, confirm_no_personal_data=False,
                          fact_names=set())
            done.append(item_id)
        except PersonalData:
            session.rollback()
            skipped.append({"id": item_id, "why": "personal data: annotate it on its own"})
        except training_data.TrainingDataError as exc:
            session.rollback()
            skipped.append({"id": item_id, "why": str(exc)})
    return {"annotated": done, "skipped": skipped}


def changes(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(select(TrainingDataChange)
                           .order_by(TrainingDataChange.id.desc()).limit(limit))
    return [{"id": c.id, "at": c.at, "by": c.by, "action": c.action, "intent": c.intent,
             "example_text": c.example_text, "item_id": c.item_id, "files": c.files}
            for c in rows]


def annotated_messages(session: Session) -> list[dict[str, Any]]:
    """Annotated items as evaluation probes: does a model now get them right?"""
    rows = session.scalars(select(ReviewItem).where(ReviewItem.status == ReviewStatus.annotated)
                           .order_by(ReviewItem.id))
    return [{"id": r.id, "text": r.example_text or r.text, "expected": r.intent} for r in rows
            if triage_data.label_of(r.intent) is None]  # triage's examples are not the bot's


def export(session: Session, *, status: str | None = None) -> list[dict[str, Any]]:
    """The queue for automation; personal data is redacted (placeholders) in what leaves."""
    query = select(ReviewItem).order_by(ReviewItem.id)
    if status:
        query = query.where(ReviewItem.status == ReviewStatus(status))
    out = []
    for r in session.scalars(query):
        out.append({"id": r.id, "text": pii.redact(r.text), "status": r.status.value,
                    "reasons": r.reasons, "occurrences": r.occurrences,
                    "predicted_intent": r.predicted_intent, "confidence": r.confidence,
                    "intent": r.intent, "example_text": r.example_text,
                    "annotated_by": r.annotated_by,
                    "last_seen_at": r.last_seen_at.isoformat() if r.last_seen_at else None})
    return out


def _cleared_example(session: Session, item: ReviewItem, example: str,
                     confirm_no_personal_data: bool) -> str:
    """The example, unless personal data is still in it and the operator has not confirmed it
    is not personal (PersonalData, with the spans, for the console)."""
    links = session.scalars(select(ReviewMessage.conversation_id)
                            .where(ReviewMessage.item_id == item.id)).all()
    findings = pii.find(example, _known_names(session, links))
    if findings and not confirm_no_personal_data:
        raise PersonalData(findings)
    return example
