"""Web chat delivery with a real socket.io client (rasa-webchat's protocol): a reply counts as
delivered once its socket answers the engine.io ping sent right after it (or is still connected
when engine.io's own next ping has had its time); what no connected socket got is replayed, in
order and once, at the session's next ``session_request``."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from engineio import packet as eio_packet
from sqlalchemy import select

from api.channels.webchat.socket import PROOF_MARGIN_S
from api.conversations import service as conversations
from api.conversations.models import Message
from api.enums import Channel, ConversationStatus, DeliveryStatus, MessageKind, OutboxStatus
from api.outbox.models import OutboxItem
from api.staff.models import Staff
from tests.api.conftest import LiveServer, login, run_db, wait_for
from tests.api.test_webchat import Widget

SESSION = "delivery-test-session-01"


@pytest.fixture
def server(make_settings, pattern_triage):
    # Short pings: a proof comes 1.3 s (+ margin) after the emit.
    live = LiveServer(make_settings(WEBCHAT_PING_INTERVAL_S=0.3, WEBCHAT_PING_TIMEOUT_S=1.0,
                                    OUTBOX_POLL_S=0.1), triage=pattern_triage).start()
    yield live
    live.stop()


async def open_widget(server, session_id=SESSION) -> Widget:
    widget = Widget(server.url)
    await widget.connect()
    assert await widget.session(session_id) == session_id
    return widget


def give_to_noor(services, session_id=SESSION) -> int:
    """The fan's thread, owned by Noor (as a handoff leaves it)."""
    with services.db.session() as session:
        identity = conversations.get_identity(session=session, channel=Channel.webchat,
                                              external_id=session_id)
        conversation = conversations.current_for_identity(session=session,
                                                          identity_id=identity.id)
        noor = session.scalar(select(Staff).where(Staff.handle == "noor"))
        conversations.transition(session=session, conversation=conversation,
                                 to=ConversationStatus.assigned, assignee_id=noor.id,
                                 actor="test", reason="a handoff")
        session.commit()
        return conversation.id


def outgoing(services) -> list[tuple[str, DeliveryStatus, OutboxStatus]]:
    def read(session):
        return [(m.text, m.delivery_status, status) for m, status in session.execute(
            select(Message, OutboxItem.status).join(OutboxItem,
                                                    OutboxItem.message_id == Message.id)
            .where(Message.kind == MessageKind.outgoing).order_by(Message.id))]
    return run_db(services, read)


def stop_answering_pings(widget: Widget) -> None:
    """The fan's Wi-Fi dies: the client's pongs no longer reach the server (engine.io's client
    queues its pong in ``_send_packet``)."""
    eio = widget.sio.eio
    send = eio._send_packet  # noqa: SLF001 - the one place a client's pong leaves

    async def no_pongs(pkt):
        if pkt.packet_type != eio_packet.PONG:
            await send(pkt)

    eio._send_packet = no_pongs  # noqa: SLF001


async def nothing_more(widget: Widget, wait_s: float = 0.8) -> None:
    await asyncio.sleep(wait_s)
    assert widget.uttered.empty(), widget.uttered.get_nowait()


async def nothing_on_reload(server) -> None:
    """The fan opens the page again: nothing already shown comes back."""
    widget = await open_widget(server)
    try:
        await nothing_more(widget)
    finally:
        await widget.close()


async def noor_sends(server, cid: int, *texts: str) -> list[dict]:
    """Noor's replies through the staff API, each answered 201; their bodies."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        noor = await login(client, "noor")
        bodies = []
        for text in texts:
            r = await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text},
                                  headers=noor)
            assert r.status_code == 201, r.text
            bodies.append(r.json())
        return bodies


async def test_reply_while_no_socket_replayed_once_on_next_session_request(server):
    services = server.app.state.services
    first = await open_widget(server)
    await first.close()
    cid = give_to_noor(services)
    sent = await noor_sends(server, cid, "Noor here.", "Where are you?")
    assert [body["delivery_status"] for body in sent] == ["pending"] * 2
    assert [s for _, s, _ in outgoing(services)] == [DeliveryStatus.pending] * 2

    again = await open_widget(server)
    try:
        assert (await again.next())["text"] == "Noor: Noor here."
        assert (await again.next())["text"] == "Noor: Where are you?"
        await wait_for(lambda: [s for _, s, _ in outgoing(services)]
                       == [DeliveryStatus.delivered] * 2, 5)
        assert {o for _, _, o in outgoing(services)} == {OutboxStatus.sent}
        await nothing_more(again)
        # The widget asks again (it does on every reconnect): nothing already shown comes back.
        assert await again.session(SESSION) == SESSION
        await nothing_more(again)
    finally:
        await again.close()
    await nothing_on_reload(server)


async def test_reply_whose_socket_dropped_before_the_ping_is_replayed(server):
    services = server.app.state.services
    widget = await open_widget(server)
    cid = give_to_noor(services)
    stop_answering_pings(widget)
    await noor_sends(server, cid, "Stay where you are.")
    assert (await widget.next())["text"] == "Noor: Stay where you are."  # emitted
    await widget.close()  # the Wi-Fi drops before the next ping: no proof it was shown
    await wait_for(lambda: outgoing(services)[0][1:] == (DeliveryStatus.pending,
                                                        OutboxStatus.pending), 5)
    back = await open_widget(server)
    try:
        assert (await back.next())["text"] == "Noor: Stay where you are."
        await wait_for(lambda: outgoing(services)[0][1] == DeliveryStatus.delivered, 5)
        await nothing_more(back)
    finally:
        await back.close()


async def test_connected_socket_proves_delivery_at_its_pong(server, fake_rasa):
    services = server.app.state.services
    widget = await open_widget(server)
    try:
        await widget.say("hello", SESSION)
        assert await widget.next(timeout=15) == {"text": "echo: hello"}  # slow on a loaded machine
        # emitted, then proven by the pong to the ping that followed it
        await wait_for(lambda: outgoing(services)[0][1:] == (DeliveryStatus.delivered,
                                                            OutboxStatus.sent), 5)
    finally:
        await widget.close()
    await nothing_on_reload(server)


async def test_page_closing_its_socket_after_the_reply_counts_as_shown(server, fake_rasa):
    services = server.app.state.services
    widget = await open_widget(server)
    await widget.say("hello", SESSION)
    assert await widget.next(timeout=15) == {"text": "echo: hello"}  # slow on a loaded machine
    await asyncio.sleep(PROOF_MARGIN_S + 0.1)  # the fan reads it, then reloads the page
    await widget.close()
    # proven by the clean close, before any ping could have done it
    await wait_for(lambda: outgoing(services)[0][1:] == (DeliveryStatus.delivered,
                                                        OutboxStatus.sent), 0.5)
    await nothing_on_reload(server)


@pytest.fixture
def slow_pings_server(make_settings, pattern_triage):
    # engine.io's default ping cycle (25 s + 20 s): only the pong to the ping sent right after
    # the reply can prove it within the test.
    live = LiveServer(make_settings(OUTBOX_POLL_S=0.1), triage=pattern_triage).start()
    yield live
    live.stop()


async def test_the_pong_after_a_reply_proves_it_within_a_round_trip(slow_pings_server):
    services = slow_pings_server.app.state.services
    widget = await open_widget(slow_pings_server)
    cid = give_to_noor(services)
    try:
        await noor_sends(slow_pings_server, cid, "I'm on my way.")
        assert (await widget.next())["text"] == "Noor: I'm on my way."
        await wait_for(lambda: outgoing(services)[0][1:] == (DeliveryStatus.delivered,
                                                            OutboxStatus.sent), 3)
    finally:
        await widget.close()
    await nothing_on_reload(slow_pings_server)


async def test_a_reply_whose_pong_never_comes_is_not_proven_by_the_socket_alone(
        slow_pings_server):
    services = slow_pings_server.app.state.services
    widget = await open_widget(slow_pings_server)
    cid = give_to_noor(services)
    stop_answering_pings(widget)
    try:
        await noor_sends(slow_pings_server, cid, "Can you see the stage?")
        assert (await widget.next())["text"] == "Noor: Can you see the stage?"
        await asyncio.sleep(1.5)
        assert outgoing(services)[0][1:] == (DeliveryStatus.sent, OutboxStatus.emitted)
    finally:
        await widget.close()
