"""The app factory: ``uvicorn --factory api.main:create_app`` (no I/O at import time)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
import httpx
import socketio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth.authenticator import Authenticator
from api.auth.router import router as auth_router
from api.auth.security import PasswordWorkers
from api.channels.common import BodySizeLimit
from api.channels.messenger.channel import MessengerChannel
from api.channels.messenger.router import router as messenger_router
from api.channels.messenger.send_api import SendApiClient
from api.channels.rest.router import router as rest_router
from api.channels.webchat.router import router as webchat_router
from api.channels.webchat.socket import WebchatChannel
from api.clock import Clock, SystemClock
from api.cluster.replica import Replica
from api.conversations.language import LanguageDecider
from api.conversations.router import router as conversations_router
from api.db import Database
from api.errors import ERROR_RESPONSES
from api.events import EventBus, InProcessEventBus, RedisEventBus
from api.handoff.manager import HandoffManager
from api.health.router import router as health_router
from api.inbox.router import api as inbox_api_router
from api.inbox.router import pages as inbox_pages_router
from api.inbox.stream import EventStream, thread_lookup
from api.intake import Intake
from api.logs import RequestIds
from api.metrics.metrics import Metrics
from api.metrics.router import router as metrics_router
from api.operator.router import pages as operator_pages_router
from api.outbox.worker import OutboxWorker
from api.ratelimit.alerts import UrgentAlerts
from api.ratelimit.limiter import RateLimits
from api.registry.activation import ModelServing
from api.registry.router import router as models_router
from api.relay.client import RasaClient
from api.relay.relay import Relay
from api.reports.router import api as reports_api_router
from api.reports.router import pages as reports_pages_router
from api.review.router import router as review_router
from api.services import Services
from api.settings import DEFAULT_DEMO_PASSWORD, Settings, get_settings
from api.staff.router import router as staff_router
from api.text import renderable
from api.training.router import router as training_router
from api.training.runner import TrainingRunner

log = logging.getLogger(__name__)


def migrate(database_url: str) -> None:
    """Bring the database to the latest Alembic revision."""
    from alembic import command

    from api.migrations.config import alembic_config

    command.upgrade(alembic_config(database_url), "head")


def open_database(settings: Settings) -> Database:
    """The database for a command-line tool: migrated (unless DB_AUTO_MIGRATE is off), with an
    in-process event bus (nobody listens outside the switchboard)."""
    if settings.db_auto_migrate:
        migrate(settings.database_url)
    return Database(settings.database_url, InProcessEventBus())


def seed_staff(db: Database, settings: Settings) -> None:
    from api.staff import service as staff

    if not settings.staff_file.is_file():
        log.warning("no staff file at %s; staff not seeded", settings.staff_file)
        return
    team = staff.load_team(path=settings.staff_file)
    with db.session() as session:
        created, updated = staff.seed(session=session, team=team)
        session.commit()
    log.info("staff seeded from %s: %s created, %s updated", settings.staff_file.name, created,
             updated)


def event_bus(settings: Settings) -> EventBus:
    """In-process (one switchboard), or through Redis when REDIS_URL is set (replicas)."""
    if not settings.redis_url:
        return InProcessEventBus()
    return RedisEventBus(settings.redis_url, stream=f"{settings.redis_prefix}:events",
                         maxlen=settings.event_stream_maxlen, buffer=settings.event_buffer)


def socketio_manager(settings: Settings) -> socketio.AsyncManager | None:
    """socket.io's rooms across replicas (python-socketio's Redis manager), or None: this
    process's own."""
    if not settings.redis_url:
        return None
    return socketio.AsyncRedisManager(settings.redis_url,
                                      channel=f"{settings.redis_prefix}:socketio")


class DefaultCredentials(RuntimeError):
    """Outside local mode, staff accounts still have a demo password."""


def staff_credentials(db: Database, settings: Settings) -> None:
    """Local mode: every person gets the demo password (reset at each start). Elsewhere: refuse
    to start while any account still has a demo password."""
    from api.auth import service as auth

    with db.session() as session:
        if settings.is_local:
            handles = auth.reset_demo_passwords(session=session,
                                                password=settings.demo_staff_password)
            session.commit()
            default = settings.demo_staff_password == DEFAULT_DEMO_PASSWORD
            log.warning(
                "local mode: demo staff accounts %s, password %s",
                ", ".join(handles) or "(none)",
                f"'{DEFAULT_DEMO_PASSWORD}' (the default; set DEMO_STAFF_PASSWORD to change it)"
                if default else "from DEMO_STAFF_PASSWORD",
            )
            return
        passwords = {DEFAULT_DEMO_PASSWORD, settings.demo_staff_password}
        found = sorted({h for p in passwords
                        for h in auth.accounts_with_password(session=session, password=p)})
    if found:
        raise DefaultCredentials(
            f"APP_ENV={settings.app_env!r}: staff accounts with a demo password refused: "
            f"{', '.join(found)}; set real passwords first"
        )


def create_app(settings: Settings | None = None, *, bus: EventBus | None = None,
               triage=None, clock: Clock | None = None, timers: bool = True) -> FastAPI:
    """Build the switchboard app; resources are opened in its lifespan.

    ``triage``: an already loaded :class:`api.triage.Triage` (tests share one); otherwise it is
    loaded from ``TRIAGE_MODEL_DIR`` in a worker thread at startup (``/healthz`` 503 until then).
    ``clock``: the handoff timers' clock; ``timers=False`` leaves the timer loop off (tests run
    rounds themselves).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services: Services = app.state.services
        if settings.db_auto_migrate:
            await anyio.to_thread.run_sync(migrate, settings.database_url)
        await anyio.to_thread.run_sync(seed_staff, services.db, settings)
        await anyio.to_thread.run_sync(staff_credentials, services.db, settings)
        if settings.messenger_enabled:
            log.info("Messenger on (Graph URL %s)", settings.messenger_graph_url)
        else:
            log.warning("Messenger off: %s not set", ", ".join(settings.messenger_missing))
        if not settings.is_local and not (settings.rest_shared_secret
                                          or settings.rest_jwt_secret):
            log.warning("REST channel closed (every call 401): set REST_SHARED_SECRET or "
                        "REST_JWT_SECRET")
        await services.bus.start()
        await services.handoff.start(timers=timers)  # asks for the timers' lease
        await services.replica.start()  # first heartbeat (and lease) before any claim
        await services.relay.start()
        await services.outbox.start()
        await services.stream.start()
        await services.training.start()
        await services.models.start()
        try:
            yield
        finally:
            await services.models.stop()
            await services.training.stop()
            await services.stream.stop()
            await services.webchat.close()
            await services.outbox.stop()
            await services.relay.stop()
            await services.handoff.stop()
            await services.replica.stop()  # after the relay: its left claims go to the others
            await services.bus.stop()
            await services.http.aclose()
            services.auth.close()
            services.db.dispose()

    app = FastAPI(
        title="Fan-care switchboard",
        version="0.1.0",
        lifespan=lifespan,
        description="Owns every fan conversation: Messenger, web chat and Rasa-REST channels.",
    )
    bus = bus or event_bus(settings)
    db = Database(settings.database_url, bus)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.rasa_timeout_s, connect=settings.rasa_connect_timeout_s),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
    )
    rasa = RasaClient(
        base_url=settings.rasa_url, token=settings.rasa_token,
        channel_path=settings.rasa_channel_path, http=http, timeout_s=settings.rasa_timeout_s,
    )
    metrics = Metrics()  # this app's own registry (not prometheus-client's global one)
    replica = Replica(db=db, settings=settings)  # this process among the cluster's replicas
    relay = Relay(db=db, rasa=rasa, settings=settings, replica=replica, metrics=metrics)
    ratelimits = RateLimits(settings)
    alerts = UrgentAlerts(bus=bus, threshold=settings.alert_flood_threshold,
                          window_s=settings.alert_group_window_s)
    clock = clock or SystemClock()
    auth = Authenticator(db=db, settings=settings, clock=clock,
                         passwords=PasswordWorkers(max_workers=settings.auth_hash_workers))
    services = Services(settings=settings, db=db, bus=bus, http=http, rasa=rasa, relay=relay,
                        auth=auth, ratelimits=ratelimits, alerts=alerts, metrics=metrics)
    services.stream = EventStream(bus, threads=thread_lookup(db))
    services.replica = replica
    # Delivers every push channel's replies from the outbox (its own component; the relay and
    # the staff paths only wake it).
    services.outbox = OutboxWorker(db=db, settings=settings, metrics=metrics, bus=bus)
    services.training = TrainingRunner(db, settings, replica)
    # Activation and rollback reach every Rasa process; the relay's own client is one of them.
    services.models = ModelServing(
        db=db, member=replica.member, load_timeout_s=settings.rasa_model_load_timeout_s,
        check_s=settings.rasa_model_check_s, replica=replica,
        processes=[rasa if url == rasa.base_url else RasaClient(
            base_url=url, token=settings.rasa_token, channel_path=settings.rasa_channel_path,
            http=http, timeout_s=settings.rasa_timeout_s) for url in settings.rasa_urls])
    from api.routing.service import load_topics

    topics = load_topics(path=settings.staff_file) if settings.staff_file.is_file() else {}
    services.handoff = HandoffManager(db=db, settings=settings, clock=clock,
                                      topics=topics, http=http, relay=relay, triage=triage,
                                      alerts=alerts, replica=replica)
    # Each fan message's language, decided by the channels when they store it, with triage's
    # own lingua detector (the same instance, reached through the handoff side that loads it).
    services.languages = LanguageDecider(services.handoff.language_guesser,
                                         default=settings.default_language)
    services.intake = Intake(db=db, relay=relay, max_message_chars=settings.max_message_chars,
                             languages=services.languages, ratelimits=ratelimits,
                             alerts=alerts, metrics=metrics, handoff=services.handoff)
    services.webchat = WebchatChannel(db=db, relay=relay, settings=settings,
                                      intake=services.intake, outbox=services.outbox,
                                      ratelimits=ratelimits, metrics=metrics,
                                      client_manager=socketio_manager(settings))
    if settings.messenger_enabled:
        client = SendApiClient(
            graph_url=settings.messenger_graph_url, page_token=settings.messenger_page_token,
            http=http, max_retries=settings.messenger_max_retries,
            backoff_s=settings.messenger_backoff_s, timeout_s=settings.messenger_timeout_s,
            metrics=metrics,
        )
        services.messenger = MessengerChannel(db=db, relay=relay, client=client,
                                              settings=settings, outbox=services.outbox,
                                              metrics=metrics)
    app.state.services = services

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError) -> JSONResponse:
        # A model validator's error carries the exception object in ``ctx``: say it in words.
        errors = [{k: v for k, v in e.items() if k != "ctx"} for e in exc.errors()]
        # The echoed input may hold a lone surrogate, which no response body can carry.
        errors = renderable(errors)
        return JSONResponse({"detail": errors}, status_code=422)

    app.include_router(health_router)
    app.include_router(metrics_router)
    # Every API and webhook route declares the shared error codes (api/errors.py).
    for router in (rest_router, messenger_router, auth_router, staff_router, inbox_api_router,
                   conversations_router, review_router, training_router, models_router,
                   reports_api_router):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(webchat_router)
    app.include_router(inbox_pages_router)
    app.include_router(operator_pages_router)
    app.include_router(reports_pages_router)
    app.mount("/socket.io", services.webchat.asgi_app())
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestIds)  # outermost: every line of a request carries its id
    return app
