"""Proof that a web chat client received what was emitted to it: the pong to a ping sent after it.

rasa-webchat never acknowledges ``bot_uttered``, but its engine.io client answers every ping
with a pong, and a socket carries packets in order: a pong to a ping queued after a reply comes
from a client that has read the reply. Rather than waiting up to engine.io's next scheduled
ping (25 s by default), the channel sends one right after each reply (:meth:`PongWatch.probe`),
so the proof arrives in one round trip and a replica killed a moment later leaves nothing
unproven to replay.

python-engineio has no pong hook: :meth:`PongWatch.watch` wraps the socket's ``receive`` to count
pongs. The extra ping does not touch engine.io's own ping cycle (``last_ping``), so it neither
starts a second cycle nor counts as an outstanding ping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from engineio import packet


class PongWatch:
    def __init__(self) -> None:
        self._pongs: dict[str, int] = {}  # per socket: pongs received since it connected
        # per socket: the pong count that answers its latest probe (an upper bound on that
        # ping's place in the socket's sequence of pings)
        self._last_probe: dict[str, int] = {}
        # per socket: (pongs needed, future) of probes awaiting them
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}

    def watch(self, sid: str, transport: Any) -> None:
        """Count the pongs ``transport`` (the socket's engine.io socket) receives."""
        self._pongs[sid] = 0
        receive = transport.receive

        async def counting_receive(pkt: packet.Packet) -> None:
            if pkt.packet_type == packet.PONG:
                self._ponged(sid)
            await receive(pkt)

        transport.receive = counting_receive

    def forget(self, sid: str) -> None:
        """The socket is gone: no pong of it will come (its probes wait for other sockets or
        time out)."""
        self._pongs.pop(sid, None)
        self._last_probe.pop(sid, None)
        self._waiters.pop(sid, None)

    async def probe(self, sids: Collection[str],
                    transports: dict[str, Any]) -> asyncio.Future[None]:
        """Ping each socket now (after what was just emitted to it); the future is done at the
        first pong that answers one of these pings, and never when no answer comes (the caller
        bounds its wait)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for sid in sids:
            transport = transports.get(sid)
            if transport is None or sid not in self._pongs or transport.closed:
                continue
            # Pongs answer pings in order, so the pongs to every ping sent before this one prove
            # nothing about what was emitted since: the earlier probes still unanswered, and
            # engine.io's own ping still awaiting its pong (``last_ping`` set; at most one).
            earlier = max(self._pongs[sid], self._last_probe.get(sid, 0))
            needed = earlier + (1 if transport.last_ping else 0) + 1
            self._last_probe[sid] = needed
            self._waiters.setdefault(sid, []).append((needed, future))
            await transport.send(packet.Packet(packet.PING))
        return future

    def _ponged(self, sid: str) -> None:
        if sid not in self._pongs:  # forgotten: its socket is gone
            return
        count = self._pongs[sid] = self._pongs[sid] + 1
        waiters = self._waiters.get(sid)
        if not waiters:
            return
        still = []
        for needed, future in waiters:
            if count >= needed:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                still.append((needed, future))
        if still:
            self._waiters[sid] = still
        else:
            del self._waiters[sid]
