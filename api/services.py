"""The objects one switchboard process holds, built by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from api.auth.authenticator import Authenticator
from api.conversations.language import LanguageDecider
from api.db import Database
from api.events import EventBus
from api.intake import Intake
from api.metrics.metrics import Metrics
from api.ratelimit.alerts import UrgentAlerts
from api.ratelimit.limiter import RateLimits
from api.relay.client import RasaClient
from api.relay.relay import Relay
from api.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus
    http: httpx.AsyncClient
    rasa: RasaClient
    relay: Relay
    auth: Authenticator  # sign-in (lock-out, argon2's own threads), sign-out, passwords
    languages: LanguageDecider | None = None  # one language decision per fan message
    ratelimits: RateLimits | None = None  # per client address and per fan session or sender
    alerts: UrgentAlerts | None = None  # urgent alerts grouped per client address
    metrics: Metrics | None = None  # this process's Prometheus figures (GET /metrics)
    intake: Intake | None = None  # how every channel takes a fan's message (api/intake.py)
    webchat: Any = None
    messenger: Any = None
    handoff: Any = None  # api.handoff.manager.HandoffManager
    stream: Any = None  # api.inbox.stream.EventStream
    training: Any = None  # api.training.runner.TrainingRunner
    models: Any = None  # api.registry.activation.ModelServing: the model on every Rasa process
    replica: Any = None  # api.cluster.replica.Replica: heartbeat, leases
    outbox: Any = None  # api.outbox.worker.OutboxWorker: delivers the push channels' replies
    extras: dict[str, Any] = field(default_factory=dict)
