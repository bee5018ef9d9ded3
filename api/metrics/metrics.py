"""The switchboard's Prometheus metrics: one :class:`Metrics` per app, with its own registry.

The app factory builds it and hands it to the parts that count (channels, relay, Messenger
sends, staff replies); ``GET /metrics`` renders it. Its own registry, not prometheus-client's
global default, so several apps in one process (the tests) do not collide, and each replica
exposes only its own figures (Prometheus adds them up).

Counters and histograms count what this process did. The gauges are set at scrape time: queue
figures and training jobs from the database (the same on every replica: aggregate them with
``max``, not ``sum``), connections from this process.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.enums import Channel

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A bot turn: Rasa answers in tens of milliseconds, the timeout (RASA_TIMEOUT_S) is 10 s.
TURN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A person's first reply: topic targets (staff.yml) run from 2 minutes to hours.
FIRST_REPLY_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fan_messages = Counter(
            "fan_messages", "Fan messages stored, by channel (duplicates and refusals left out).",
            ["channel"], registry=r)
        self.bot_turns = Counter(
            "bot_turns", "Bot turns answered by Rasa (turns found in the tracker included).",
            registry=r)
        self.bot_turn_seconds = Histogram(
            "bot_turn_seconds", "Time Rasa took to answer one fan message.",
            buckets=TURN_BUCKETS, registry=r)
        self.rasa_errors = Counter(
            "rasa_errors", "Bot turns that failed (timeout, refused, bad answer, ...), by kind.",
            ["kind"], registry=r)
        self.holding_replies = Counter(
            "holding_replies", "Holding replies sent to fans while Rasa could not answer.",
            registry=r)
        self.handoffs = Counter(
            "handoffs", "Conversations handed to a person by triage, by first trigger and topic.",
            ["trigger", "topic"], registry=r)
        self.first_human_reply_seconds = Histogram(
            "first_human_reply_seconds",
            "From the message that asked for a person to the first person's reply, by topic.",
            ["topic"], buckets=FIRST_REPLY_BUCKETS, registry=r)
        self.deliveries = Counter(
            "deliveries", "Replies handed to a channel, by channel and status (sent; retried: "
            "a Send API or outbox retry; dead: a final failure or the outbox's attempts used "
            "up, recorded in the outbox).",
            ["channel", "status"], registry=r)
        self.queue_conversations = Gauge(
            "queue_conversations", "Conversations waiting for a person (database-wide).",
            registry=r)
        self.queue_oldest_wait_seconds = Gauge(
            "queue_oldest_wait_seconds",
            "How long the longest-waiting queued fan has waited since their last message "
            "(database-wide; 0 when nobody waits).", registry=r)
        self.sse_connections = Gauge(
            "inbox_sse_connections", "Inbox event streams open on this process.", registry=r)
        self.socketio_connections = Gauge(
            "webchat_socketio_connections", "Web chat socket.io connections on this process.",
            registry=r)
        self.training_jobs = Gauge(
            "training_jobs", "Training jobs by status (database-wide).", ["status"], registry=r)
        self.outbox_rows = Gauge(
            "outbox_rows", "Outbox delivery rows by status (database-wide; dead and failed: "
            "replies the fan never got).", ["status"], registry=r)
        for channel in Channel:  # every channel shows, at 0 until its first message
            self.fan_messages.labels(channel=channel.value)

    # -- what the parts call -------------------------------------------------------------------
    def fan_message(self, channel: Channel, count: int = 1) -> None:
        if count > 0:
            self.fan_messages.labels(channel=channel.value).inc(count)

    def bot_turn(self, seconds: float | None) -> None:
        """An answered turn; ``seconds`` None when it was found in the tracker (not timed)."""
        self.bot_turns.inc()
        if seconds is not None:
            self.bot_turn_seconds.observe(seconds)

    def rasa_error(self, kind: str, *, holding: bool) -> None:
        self.rasa_errors.labels(kind=kind).inc()
        if holding:
            self.holding_replies.inc()

    def handoff(self, *, trigger: str | None, topic: str | None) -> None:
        self.handoffs.labels(trigger=trigger or "handoff", topic=topic or "general").inc()

    def first_human_reply(self, *, topic: str | None, seconds: float) -> None:
        self.first_human_reply_seconds.labels(topic=topic or "general").observe(max(0.0, seconds))

    def delivery(self, channel: Channel, status: str, count: int = 1) -> None:
        if count > 0:
            self.deliveries.labels(channel=channel.value, status=status).inc(count)

    # -- scrape time ---------------------------------------------------------------------------
    def render(self, *, queue_length: int, oldest_wait_s: float, training: Mapping[str, int],
               sse_connections: int, socketio_connections: int,
               outbox: Mapping[str, int] | None = None) -> bytes:
        """The text exposition, with the gauges set to the figures given."""
        self.queue_conversations.set(queue_length)
        self.queue_oldest_wait_seconds.set(max(0.0, oldest_wait_s))
        for status, n in training.items():
            self.training_jobs.labels(status=status).set(n)
        self.sse_connections.set(sse_connections)
        self.socketio_connections.set(socketio_connections)
        for status, n in (outbox or {}).items():
            self.outbox_rows.labels(status=status).set(n)
        return generate_latest(self.registry)
