"""PongWatch: a reply is proven by the pong to the ping sent after it, never by the pong to a
ping engine.io sent before it."""

from __future__ import annotations

import asyncio

from engineio import packet

from api.channels.webchat.pongs import PongWatch


class FakeTransport:
    """The parts of python-engineio's socket PongWatch uses."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.received: list[int] = []
        self.last_ping: float | None = None  # engine.io's own ping awaiting its pong
        self.closed = False

    async def receive(self, pkt: packet.Packet) -> None:
        self.received.append(pkt.packet_type)

    async def send(self, pkt: packet.Packet) -> None:
        self.sent.append(pkt.packet_type)


async def pong(transport: FakeTransport) -> None:
    await transport.receive(packet.Packet(packet.PONG))


async def test_the_pong_to_the_probe_proves_it():
    watch, transport = PongWatch(), FakeTransport()
    watch.watch("s1", transport)
    answered = await watch.probe(["s1"], {"s1": transport})
    assert transport.sent == [packet.PING] and not answered.done()
    await pong(transport)
    assert answered.done()
    assert transport.received == [packet.PONG]  # engine.io still sees its pongs


async def test_an_outstanding_ping_s_pong_proves_nothing():
    watch, transport = PongWatch(), FakeTransport()
    watch.watch("s1", transport)
    transport.last_ping = 1.0  # engine.io pinged before the reply was emitted
    answered = await watch.probe(["s1"], {"s1": transport})
    await pong(transport)  # the answer to engine.io's ping, maybe sent before the reply arrived
    assert not answered.done()
    await pong(transport)
    assert answered.done()


async def test_the_pong_to_an_earlier_reply_s_probe_proves_only_that_reply():
    watch, transport = PongWatch(), FakeTransport()
    watch.watch("s1", transport)
    first = await watch.probe(["s1"], {"s1": transport})  # reply 1, then its ping
    second = await watch.probe(["s1"], {"s1": transport})  # reply 2 before the first pong
    await pong(transport)  # may have left the client before reply 2 arrived
    assert first.done() and not second.done()
    await pong(transport)
    assert second.done()


async def test_any_socket_of_the_session_proves_it_and_a_gone_one_never_does():
    watch, first, second = PongWatch(), FakeTransport(), FakeTransport()
    watch.watch("s1", first)
    watch.watch("s2", second)
    answered = await watch.probe(["s1", "s2", "gone"], {"s1": first, "s2": second})
    watch.forget("s1")
    await pong(first)
    assert not answered.done()
    await pong(second)
    assert answered.done()


async def test_no_socket_to_ping_leaves_the_proof_to_the_fallback():
    watch = PongWatch()
    answered = await watch.probe(["gone"], {})
    await asyncio.sleep(0)
    assert not answered.done()
