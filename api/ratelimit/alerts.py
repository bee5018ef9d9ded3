"""Urgent alerts grouped per client address.

Every urgent thread still gets its handoff and its reply (nothing here touches the fan); only the
alerts to ``ALERT_WEBHOOK_URL`` and the supervisors' banner are grouped. The first
``alert_flood_threshold`` urgent alerts from one address within ``alert_group_window_s`` go out
one by one, as before. Past that the address is flooding: a ``alert.flood`` event raises the
supervisors' banner at once, and the alerts that follow are sent as one summary per window (their
conversation ids, no fan text). Alerts of conversations whose address is not known (timers'
reminders, Messenger) are never held.

The channels note each accepted fan message's address here (memory, bounded; addresses are
kept in this process only, never stored).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from api.events import Event, EventBus

log = logging.getLogger(__name__)

MAX_ORIGINS = 20_000  # conversations whose latest address is remembered
LISTED = 20  # conversation ids named in one summary
Send = Callable[[str], None]


@dataclass
class _Flood:
    send: Send  # posts one text to the alert webhook (HandoffManager's)
    times: deque[float] = field(default_factory=deque)  # urgent alerts within the window
    held: list[int] = field(default_factory=list)  # conversation ids waiting for the summary
    flooding: bool = False
    flush: asyncio.TimerHandle | None = None
    total: int = 0  # urgent alerts of this flood so far


class UrgentAlerts:
    def __init__(self, *, bus: EventBus, threshold: int, window_s: float) -> None:
        self.bus = bus
        self.threshold = max(1, threshold)
        self.window_s = window_s
        self._origins: OrderedDict[int, str] = OrderedDict()
        self._floods: dict[str, _Flood] = {}
        self._labels: dict[str, int] = {}  # address -> a small number naming it in alerts
        self.grouped = 0  # alerts folded into summaries
        self.summaries = 0

    def note_origin(self, conversation_id: int, address: str) -> None:
        """A fan message of ``conversation_id`` was accepted from ``address``."""
        self._origins[conversation_id] = address
        self._origins.move_to_end(conversation_id)
        while len(self._origins) > MAX_ORIGINS:
            self._origins.popitem(last=False)

    def _label(self, address: str) -> str:
        # Alerts leave the process: name the network by a number, not by its address.
        return f"network #{self._labels.setdefault(address, len(self._labels) + 1)}"

    def offer(self, text: str, conversation_id: int | None, send: Send) -> None:
        """An urgent alert: ``send`` it now, or fold it into its address's summary."""
        address = self._origins.get(conversation_id) if conversation_id is not None else None
        if address is None:
            send(text)
            return
        now = time.monotonic()
        flood = self._floods.setdefault(address, _Flood(send=send))
        while flood.times and now - flood.times[0] > self.window_s:
            flood.times.popleft()
        flood.times.append(now)
        if not flood.flooding and len(flood.times) <= self.threshold:
            flood.send(text)
            return
        flood.total += 1
        flood.held.append(conversation_id)
        self.grouped += 1
        if not flood.flooding:
            flood.flooding = True
            log.warning("urgent flood from %s: alerts grouped", self._label(address))
            flood.send(f"URGENT FLOOD: more than {self.threshold} urgent threads from one "
                       f"{self._label(address)} within {self.window_s:g} s. Each fan got "
                       f"their handoff; further alerts come as one summary every "
                       f"{self.window_s:g} s.")
            self._banner(address, flood)
        if flood.flush is None:
            loop = asyncio.get_running_loop()
            flood.flush = loop.call_later(self.window_s, self._flush, address)

    def _banner(self, address: str, flood: _Flood) -> None:
        self.bus.publish(Event("alert.flood", None, {
            "kind": "urgent", "network": self._label(address),
            "count": flood.total + self.threshold, "window_s": self.window_s,
            "active": flood.flooding,
        }))

    def _flush(self, address: str) -> None:
        flood = self._floods.get(address)
        if flood is None:
            return
        flood.flush = None
        if not flood.held:  # a quiet window: the flood is over
            flood.flooding = False
            flood.total = 0
            self._banner(address, flood)
            self._floods.pop(address, None)
            return
        ids, flood.held = flood.held, []
        listed = ", ".join(str(i) for i in ids[:LISTED]) + (" …" if len(ids) > LISTED else "")
        self.summaries += 1
        flood.send(f"URGENT FLOOD ({self._label(address)}): {len(ids)} more urgent threads in "
                   f"the last {self.window_s:g} s: conversations {listed}")
        self._banner(address, flood)
        flood.flush = asyncio.get_running_loop().call_later(self.window_s, self._flush, address)

    def close(self) -> None:
        """Send what is held (shutdown) and stop the timers."""
        for address, flood in list(self._floods.items()):
            if flood.flush is not None:
                flood.flush.cancel()
            if flood.held:
                self._flush(address)
                if flood.flush is not None:
                    flood.flush.cancel()
        self._floods.clear()
