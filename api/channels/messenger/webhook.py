"""One Messenger webhook delivery: every event of every entry recorded, in order.

Fans' messages go through the intake (api/intake.py), each stored in its own unit of work;
echoes, deliveries and read receipts are recorded by api/channels/messenger/service.py. An event
that cannot be recorded (the database refused it, or is gone) makes the delivery fail, so Meta
sends it again; what was recorded is skipped then (de-duplication on ``mid``; deliveries and
reads are idempotent). The later events of the same fan in the delivery are not attempted:
they come again with the redelivery, after the one that failed, in their order.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from api.channels.messenger import service
from api.db import Database
from api.intake import Intake
from api.snapshots import Received

log = logging.getLogger(__name__)


@dataclass
class WebhookOutcome:
    received: list[Received] = field(default_factory=list)  # fans' messages stored
    counts: Counter[str] = field(default_factory=Counter)  # events by what became of them

    @property
    def unrecorded(self) -> int:
        """Events left for Meta's redelivery: failed, or waiting behind one that failed."""
        return self.counts["failed"] + self.counts["deferred"]


async def record_payload(payload: dict[str, Any], *, intake: Intake, db: Database,
                         app_id: str | None) -> WebhookOutcome:
    """Record every event of a delivery; what follows a fan's message (the bot's turn, a held
    message's triage, notices) is left to ``intake.settle`` once Meta has its answer."""
    outcome = WebhookOutcome()
    failed_fans: set[str] = set()
    for source, ev in service.iter_events(payload):
        fan = service.fan_of(ev)
        if fan is not None and fan in failed_fans:
            outcome.counts["deferred"] += 1
            continue
        try:
            if service.is_fan_message(ev):
                await _fan_message(source, ev, intake, outcome)
            else:
                await db.run(service.handle_event, ev=ev, counts=outcome.counts, app_id=app_id)
        except Exception:  # noqa: BLE001 - any failure: Meta redelivers, nothing is lost
            outcome.counts["failed"] += 1
            if fan is not None:
                failed_fans.add(fan)
            log.exception("messenger: event could not be recorded")
    return outcome


async def _fan_message(source: str, ev: dict[str, Any], intake: Intake,
                       outcome: WebhookOutcome) -> None:
    incoming = service.fan_incoming(source, ev)
    if incoming is None:
        outcome.counts["invalid"] += 1
        return
    received = await intake.receive(incoming, settle=False)
    if received.message_id is None:
        outcome.counts["duplicate"] += 1
        return
    outcome.received.append(received)
    outcome.counts["standby" if incoming.standby else "message"] += 1
