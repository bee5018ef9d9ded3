"""Settings for the switchboard, read from the environment once per process."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "switchboard.db"
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v23.0"
LOCAL_RASA_TOKEN = "local-dev-token"
LOCAL_TOKEN_SECRET = "local-dev-token-secret"
DEFAULT_DEMO_PASSWORD = "aurora-demo"

# Values that are fine on a laptop and never anywhere else.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "token", "test", "password", "placeholder",
     "xxx", "todo", LOCAL_RASA_TOKEN, LOCAL_TOKEN_SECRET, DEFAULT_DEMO_PASSWORD}
)


class Settings(BaseSettings):
    """Everything the switchboard reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True
    )

    # "local" (a laptop: demo staff passwords, placeholder secrets allowed) is chosen explicitly
    # (`make run`, the tests, the benchmarks); anything else is production and refuses defaults.
    app_env: str = Field(default="production", validation_alias="APP_ENV")
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}", validation_alias="DATABASE_URL"
    )
    db_auto_migrate: bool = Field(default=True, validation_alias="DB_AUTO_MIGRATE")
    staff_file: Path = Field(
        default=REPO_ROOT / "data" / "staff.yml", validation_alias="STAFF_FILE"
    )

    host: str = Field(default="127.0.0.1", validation_alias="SWITCHBOARD_HOST")
    port: int = Field(default=8000, validation_alias="SWITCHBOARD_PORT")
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    # "plain": readable lines (a terminal, `make run`); "json": one JSON object per line.
    log_format: Literal["plain", "json"] = Field(default="plain", validation_alias="LOG_FORMAT")
    # Bearer token for GET /metrics. Unset: /metrics is open in local mode, off (404) elsewhere.
    metrics_token: str | None = Field(default=None, validation_alias="METRICS_TOKEN")

    rasa_url: str = Field(default="http://127.0.0.1:5005", validation_alias="RASA_URL")
    # Every Rasa process serving this bot, comma-separated (default: RASA_URL alone; it must be
    # one of them). Activation and rollback load the model into each one, and a process that
    # was down is given the active model when it answers again (api/registry/activation.py).
    # Turns go to RASA_URL only: with several processes, give each replica one of them
    # (`make cluster` gives replica n the process (n-1) mod k). Any process may run any turn of
    # a conversation, because the tracker store (PostgreSQL) and the lock store (Redis) are
    # shared.
    rasa_urls_list: str = Field(default="", validation_alias="RASA_URLS")
    # How often (seconds) the Rasa processes' /status is compared with the registry's active
    # model, by one replica of the cluster at a time; 0: never (activation still reaches all).
    rasa_model_check_s: float = Field(default=10.0, ge=0, validation_alias="RASA_MODEL_CHECK_S")
    rasa_token: str = Field(default=LOCAL_RASA_TOKEN, validation_alias="RASA_TOKEN")
    action_server_url: str = Field(
        default="http://127.0.0.1:5055", validation_alias="ACTION_SERVER_URL"
    )
    rasa_channel_path: str = Field(
        default="/webhooks/switchboard/webhook", validation_alias="RASA_CHANNEL_PATH"
    )
    # A turn that takes longer than this gets the holding reply and is retried later.
    rasa_timeout_s: float = Field(default=10.0, validation_alias="RASA_TIMEOUT_S")
    rasa_connect_timeout_s: float = Field(default=2.0, validation_alias="RASA_CONNECT_TIMEOUT_S")
    relay_retry_base_s: float = Field(default=2.0, validation_alias="RELAY_RETRY_BASE_S")
    relay_retry_max_s: float = Field(default=60.0, validation_alias="RELAY_RETRY_MAX_S")
    relay_poll_s: float = Field(default=1.0, validation_alias="RELAY_POLL_S")
    health_timeout_s: float = Field(default=2.0, validation_alias="HEALTH_TIMEOUT_S")
    # Replicas (api/cluster): this process's name among the switchboards sharing the database
    # (default hostname-pid; a fixed name lets a restarted replica resume its own claims at
    # once). It writes a heartbeat every CLUSTER_HEARTBEAT_S (default 1); a replica whose last
    # one is older than CLUSTER_STALE_S (default 3) is dead: its bot turns, its lease on the
    # handoff timers and its training job are taken over or failed by the others.
    replica_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
                            min_length=1, max_length=128, validation_alias="REPLICA_ID")
    cluster_heartbeat_s: float = Field(default=1.0, gt=0, validation_alias="CLUSTER_HEARTBEAT_S")
    cluster_stale_s: float = Field(default=3.0, gt=0, validation_alias="CLUSTER_STALE_S")

    messenger_app_secret: str | None = Field(default=None, validation_alias="MESSENGER_APP_SECRET")
    messenger_verify_token: str | None = Field(
        default=None, validation_alias="MESSENGER_VERIFY_TOKEN"
    )
    messenger_page_token: str | None = Field(default=None, validation_alias="MESSENGER_PAGE_TOKEN")
    messenger_graph_url: str = Field(
        default=DEFAULT_GRAPH_URL, validation_alias="MESSENGER_GRAPH_URL"
    )
    messenger_app_id: str | None = Field(default=None, validation_alias="MESSENGER_APP_ID")
    messenger_timeout_s: float = Field(default=10.0, validation_alias="MESSENGER_TIMEOUT_S")
    messenger_max_retries: int = Field(default=3, validation_alias="MESSENGER_MAX_RETRIES")
    messenger_backoff_s: float = Field(default=0.5, validation_alias="MESSENGER_BACKOFF_S")
    # The delivery worker (api/outbox/worker.py). A send that fails temporarily (after the Send
    # API client's quick retries above) is retried after OUTBOX_RETRY_BASE_S, doubling up to
    # OUTBOX_RETRY_MAX_S, with jitter (defaults 5 s and 300 s), and marked dead — shown in the
    # inbox as not delivered — once OUTBOX_MAX_ATTEMPTS attempts failed (default 8: about ten
    # minutes).
    outbox_retry_base_s: float = Field(default=5.0, gt=0, validation_alias="OUTBOX_RETRY_BASE_S")
    outbox_retry_max_s: float = Field(default=300.0, gt=0, validation_alias="OUTBOX_RETRY_MAX_S")
    outbox_max_attempts: int = Field(default=8, ge=1, validation_alias="OUTBOX_MAX_ATTEMPTS")
    # How often the worker looks for due rows unless woken (retries, rows a dead replica held;
    # default 1 s), how many it leases per round (default 100), and how long a lease holds a
    # row before another worker may take it over (default 120 s: longer than a send's quick
    # retries and time-outs).
    outbox_poll_s: float = Field(default=1.0, gt=0, validation_alias="OUTBOX_POLL_S")
    outbox_batch: int = Field(default=100, ge=1, validation_alias="OUTBOX_BATCH")
    outbox_lease_s: float = Field(default=120.0, gt=0, validation_alias="OUTBOX_LEASE_S")

    default_language: str = Field(default="en", validation_alias="DEFAULT_LANGUAGE")
    max_body_bytes: int = Field(default=256 * 1024, validation_alias="MAX_BODY_BYTES")
    max_message_chars: int = Field(default=4000, validation_alias="MAX_MESSAGE_CHARS")
    webchat_dedup_s: float = Field(default=2.0, validation_alias="WEBCHAT_DEDUP_S")
    # Commands web chat takes without the bot having offered them (a JSON list): fan.js's
    # initPayload.
    webchat_start_commands: list[str] = Field(
        default=["/greet"], validation_alias="WEBCHAT_START_COMMANDS"
    )
    # REST channel credentials (api/channels/rest/auth.py), one required outside local mode:
    # a trusted backend's shared secret (it names the sender), or the HS256 key of fans' JWTs
    # (their `sub` names the sender), both sent as `Authorization: Bearer ...`.
    rest_shared_secret: str | None = Field(default=None, validation_alias="REST_SHARED_SECRET")
    rest_jwt_secret: str | None = Field(default=None, validation_alias="REST_JWT_SECRET")
    # A REST request whose metadata.message_id is already stored (a client retrying after a lost
    # response) waits up to this long for that message's turn (still running, or taken over
    # from a replica that died) to answer with its replies; default 15 s (a turn's Rasa timeout
    # plus a takeover).
    rest_retry_wait_s: float = Field(default=15.0, validation_alias="REST_RETRY_WAIT_S")
    # Web pages other than our own that may open the web chat socket (the brand's sites),
    # comma-separated origins such as "https://aurora.example"; the page's own origin always may.
    webchat_allowed_origins: str = Field(default="", validation_alias="WEBCHAT_ALLOWED_ORIGINS")
    # A web chat session nobody used (no message, no connection) for this long is not rejoined:
    # its id gets a new session and conversation.
    webchat_session_idle_days: float = Field(
        default=30.0, gt=0, validation_alias="WEBCHAT_SESSION_IDLE_DAYS"
    )
    # Largest socket.io message / WebSocket frame accepted (uvicorn's ws_max_size, engine.io's
    # max_http_buffer_size); the longest fan message fits several times over.
    websocket_max_bytes: int = Field(
        default=64 * 1024, ge=16 * 1024, validation_alias="WEBSOCKET_MAX_BYTES"
    )
    # engine.io's ping interval and time-out for web chat sockets (defaults 25 s and 20 s, the
    # library's). A reply counts as delivered once its socket is still connected at the next
    # ping (the widget never acknowledges one): at most interval + time-out after the emit.
    webchat_ping_interval_s: float = Field(
        default=25.0, gt=0, validation_alias="WEBCHAT_PING_INTERVAL_S"
    )
    webchat_ping_timeout_s: float = Field(
        default=20.0, gt=0, validation_alias="WEBCHAT_PING_TIMEOUT_S"
    )

    # Several replicas: the Redis every replica shares, for the event bus (one stream: global
    # event ids an inbox resumes from on any replica) and web chat's socket.io rooms (a reply
    # sent on one replica reaches the fan's socket on another). Empty (the default): one
    # process, in-process bus and rooms.
    redis_url: str = Field(default="", validation_alias="REDIS_URL")
    # Prefix of the desk's keys in Redis: the stream "<prefix>:events" and socket.io's channel
    # "<prefix>:socketio" (default "switchboard"; tests and several desks on one Redis differ).
    redis_prefix: str = Field(default="switchboard", min_length=1,
                              validation_alias="REDIS_PREFIX")
    # Events the Redis stream keeps (about; older ones are trimmed): how far back an inbox that
    # reconnects can resume before it must re-sync. Default 50000.
    event_stream_maxlen: int = Field(default=50_000, ge=1000,
                                     validation_alias="EVENT_STREAM_MAXLEN")
    # Events one replica holds in memory while Redis is unreachable (published in order when it
    # is back); past this the oldest are dropped and every inbox re-syncs. Default 10000.
    event_buffer: int = Field(default=10_000, ge=100, validation_alias="EVENT_BUFFER")

    # Triage (api/triage/): loaded once at startup, in a worker thread.
    triage_model_dir: Path = Field(
        default=REPO_ROOT / "models" / "triage", validation_alias="TRIAGE_MODEL_DIR"
    )
    triage_history: int = Field(default=5, validation_alias="TRIAGE_HISTORY")
    # Read the semantic layer in a process of its own (one per switchboard process, about
    # 150 MB), so its pure-Python tokenizer never holds the GIL while the event loop handles
    # Rasa's answer; false: in a worker thread (+1-2 ms on a fan's turn; the tests use this).
    triage_semantic_process: bool = Field(default=True,
                                          validation_alias="TRIAGE_SEMANTIC_PROCESS")

    # Staff API authentication: signed bearer tokens with an expiry; argon2 password hashes.
    auth_token_secret: str = Field(
        default=LOCAL_TOKEN_SECRET, validation_alias="AUTH_TOKEN_SECRET"
    )
    auth_token_ttl_s: int = Field(default=12 * 3600, validation_alias="AUTH_TOKEN_TTL_S")
    # Sign-in lock-out, per handle and client address together: after this many failed
    # attempts within the window, that handle is refused from that address for lockout_s.
    auth_lockout_failures: int = Field(default=5, ge=1, validation_alias="AUTH_LOCKOUT_FAILURES")
    auth_lockout_window_s: int = Field(default=15 * 60, ge=1,
                                       validation_alias="AUTH_LOCKOUT_WINDOW_S")
    auth_lockout_s: int = Field(default=15 * 60, ge=1, validation_alias="AUTH_LOCKOUT_S")
    # Threads for argon2 (hashing and checking passwords), apart from the database's threads so
    # a flood of sign-ins cannot starve message intake.
    auth_hash_workers: int = Field(default=2, ge=1, validation_alias="AUTH_HASH_WORKERS")
    # Shortest password a person may set (password change, `python -m api.staff set-password`).
    auth_min_password_chars: int = Field(default=12, ge=8,
                                         validation_alias="AUTH_MIN_PASSWORD_CHARS")
    # Local mode only: every person in staff.yml gets this password at every start.
    demo_staff_password: str = Field(
        default=DEFAULT_DEMO_PASSWORD, validation_alias="DEMO_STAFF_PASSWORD"
    )

    # Rate limits (api/ratelimit/): a rate ("30/second", limits' notation) plus a burst a client
    # may send at once. Per client address: sized for a venue's shared Wi-Fi, where hundreds of
    # fans share one address; per fan session or REST sender: tight.
    rate_limit_address: str = Field(default="30/second", validation_alias="RATE_LIMIT_ADDRESS")
    rate_limit_address_burst: int = Field(default=100, validation_alias="RATE_LIMIT_ADDRESS_BURST")
    # New web chat sessions (socket.io session_request) per client address.
    rate_limit_session_request: str = Field(default="10/second",
                                            validation_alias="RATE_LIMIT_SESSION_REQUEST")
    rate_limit_session_request_burst: int = Field(
        default=50, validation_alias="RATE_LIMIT_SESSION_REQUEST_BURST")
    # One fan's messages (a web chat session, a REST sender).
    rate_limit_sender: str = Field(default="1/second", validation_alias="RATE_LIMIT_SENDER")
    rate_limit_sender_burst: int = Field(default=10, validation_alias="RATE_LIMIT_SENDER_BURST")
    # Staff sign-in attempts (API and inbox form) per client address.
    rate_limit_login: str = Field(default="1/second", validation_alias="RATE_LIMIT_LOGIN")
    rate_limit_login_burst: int = Field(default=20, validation_alias="RATE_LIMIT_LOGIN_BURST")
    # Where the counters live: memory:// (this process) or redis://host:port/db (all replicas).
    rate_limit_storage_url: str = Field(default="memory://",
                                        validation_alias="RATE_LIMIT_STORAGE_URL")
    # Prefix of the counters' keys in Redis.
    rate_limit_key_prefix: str = Field(default="switchboard-limits",
                                       validation_alias="RATE_LIMIT_KEY_PREFIX")
    # Local mode exempts loopback (the project's load and fault tests); true limits it too.
    rate_limit_loopback: bool = Field(default=False, validation_alias="RATE_LIMIT_LOOPBACK")
    # Balancers whose X-Forwarded-For is believed: comma-separated addresses or CIDR networks
    # (default none: the TCP peer is the client).
    trusted_proxies: str = Field(default="", validation_alias="TRUSTED_PROXIES")
    # Urgent alerts from one client address: past alert_flood_threshold within alert_group_window_s
    # they are sent as one summary per window (webhook) and raise the supervisors' flood banner.
    alert_flood_threshold: int = Field(default=3, validation_alias="ALERT_FLOOD_THRESHOLD")
    alert_group_window_s: float = Field(default=60.0, validation_alias="ALERT_GROUP_WINDOW_S")

    # Handoff: shifts are local times in this zone; timers look every timer_poll_s.
    staff_timezone: str = Field(default="Europe/Madrid", validation_alias="STAFF_TIMEZONE")
    timer_poll_s: float = Field(default=1.0, validation_alias="TIMER_POLL_S")
    # Slack-compatible incoming webhook for urgent threads nobody suitable can take.
    alert_webhook_url: str | None = Field(default=None, validation_alias="ALERT_WEBHOOK_URL")
    alert_timeout_s: float = Field(default=5.0, validation_alias="ALERT_TIMEOUT_S")
    # Messenger personas (a staff member's name on their messages; reported not to work in the EU).
    messenger_personas: bool = Field(default=False, validation_alias="MESSENGER_PERSONAS")
    messenger_page_id: str = Field(default="me", validation_alias="MESSENGER_PAGE_ID")
    messenger_persona_picture_url: str = Field(
        default="", validation_alias="MESSENGER_PERSONA_PICTURE_URL"
    )
    # Fan satisfaction (api/csat): ask the fan how it went when a person resolves their thread;
    # a fan asked within csat_repeat_days (any conversation) is not asked again.
    csat_enabled: bool = Field(default=True, validation_alias="CSAT_ENABLED")
    csat_repeat_days: int = Field(default=30, ge=0, validation_alias="CSAT_REPEAT_DAYS")

    # Operators' retraining loop (api/review, api/training, api/registry): the Rasa project the
    # console writes reviewed examples into, the bot environment that trains and scores models,
    # and where models live (candidates in their own folder: nothing unevaluated is served).
    bot_project_dir: Path = Field(default=REPO_ROOT, validation_alias="BOT_PROJECT_DIR")
    bot_venv: Path = Field(default=REPO_ROOT / ".venv-bot", validation_alias="BOT_VENV")
    models_dir: Path = Field(default=REPO_ROOT / "models", validation_alias="MODELS_DIR")
    # Rasa config for console training (default: the project's config.yml); tests use a small one.
    bot_train_config: Path | None = Field(default=None, validation_alias="BOT_TRAIN_CONFIG")
    # A bot turn under this intent confidence goes to the review queue.
    review_low_confidence: float = Field(default=0.7, validation_alias="REVIEW_LOW_CONFIDENCE")
    # Activation gate: macro-F1 may fall by at most this, and no intent may fall below the floor.
    gate_max_macro_f1_drop: float = Field(default=0.01, validation_alias="GATE_MAX_MACRO_F1_DROP")
    gate_min_intent_f1: float = Field(default=0.8, validation_alias="GATE_MIN_INTENT_F1")
    # Swapping a model into the running Rasa server loads it first: allow for that.
    rasa_model_load_timeout_s: float = Field(
        default=180.0, validation_alias="RASA_MODEL_LOAD_TIMEOUT_S"
    )

    @model_validator(mode="after")
    def _check_rate_limits(self) -> Settings:
        from limits import parse

        from api.ratelimit.address import trusted_networks

        for name in ("rate_limit_address", "rate_limit_session_request", "rate_limit_sender",
                     "rate_limit_login"):
            try:
                parse(getattr(self, name))
            except ValueError:
                raise ValueError(f"{name.upper()}: not a rate such as '30/second'") from None
            if getattr(self, f"{name}_burst") < 1:
                raise ValueError(f"{name.upper()}_BURST must be at least 1")
        try:
            trusted_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
        return self

    @property
    def rasa_urls(self) -> list[str]:
        """RASA_URLS as a list (RASA_URL alone when unset), without trailing slashes."""
        listed = [u.strip().rstrip("/") for u in self.rasa_urls_list.split(",") if u.strip()]
        return listed or [self.rasa_url.rstrip("/")]

    @model_validator(mode="after")
    def _check_rasa_urls(self) -> Settings:
        urls = self.rasa_urls
        if any(not u.startswith(("http://", "https://")) for u in urls):
            raise ValueError("RASA_URLS: every entry must be an http(s):// URL")
        if len(set(urls)) != len(urls):
            raise ValueError("RASA_URLS names a process twice")
        if self.rasa_url.rstrip("/") not in urls:
            raise ValueError("RASA_URL must be one of RASA_URLS (its turns need the active "
                             "model too)")
        return self

    @model_validator(mode="after")
    def _check_cluster_timing(self) -> Settings:
        if self.cluster_stale_s < 2 * self.cluster_heartbeat_s:
            raise ValueError("CLUSTER_STALE_S must be at least twice CLUSTER_HEARTBEAT_S")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_outside_local(self) -> Settings:
        if self.is_local:
            return self
        bad = []
        if self.rasa_token.strip().lower() in PLACEHOLDER_SECRETS:
            bad.append("RASA_TOKEN")
        secret = self.auth_token_secret.strip()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
            bad.append("AUTH_TOKEN_SECRET")
        for name in ("messenger_app_secret", "messenger_verify_token", "messenger_page_token"):
            value = getattr(self, name)
            if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                bad.append(name.upper())
        # An HS256 key needs 256 bits (RFC 7518 3.2); a shared secret as much as the token one.
        for name, shortest in (("rest_shared_secret", 16), ("rest_jwt_secret", 32),
                               ("metrics_token", 16)):
            value = getattr(self, name)
            if value is not None and (value.strip().lower() in PLACEHOLDER_SECRETS
                                      or len(value.strip()) < shortest):
                bad.append(name.upper())
        if bad:
            raise ValueError(
                f"APP_ENV={self.app_env!r}: placeholder or empty secrets refused: {', '.join(bad)}"
            )
        return self

    @property
    def is_local(self) -> bool:
        return self.app_env == "local"

    @property
    def webchat_origins(self) -> frozenset[str]:
        """WEBCHAT_ALLOWED_ORIGINS as origins compared with a browser's Origin header."""
        return frozenset(
            o.strip().rstrip("/").lower() for o in self.webchat_allowed_origins.split(",")
            if o.strip()
        )

    @property
    def messenger_enabled(self) -> bool:
        return bool(
            self.messenger_app_secret and self.messenger_verify_token and self.messenger_page_token
        )

    @property
    def messenger_missing(self) -> list[str]:
        names = {
            "MESSENGER_APP_SECRET": self.messenger_app_secret,
            "MESSENGER_VERIFY_TOKEN": self.messenger_verify_token,
            "MESSENGER_PAGE_TOKEN": self.messenger_page_token,
        }
        return [k for k, v in names.items() if not v]

    @property
    def candidates_dir(self) -> Path:
        return self.models_dir / "candidates"

    @property
    def evaluations_dir(self) -> Path:
        return self.models_dir / "evaluations"

    @property
    def train_config(self) -> Path:
        return self.bot_train_config or self.bot_project_dir / "config.yml"

    @property
    def action_server_base(self) -> str:
        url = self.action_server_url.rstrip("/")
        return url[: -len("/webhook")] if url.endswith("/webhook") else url

    @property
    def database_kind(self) -> Literal["sqlite", "postgresql", "other"]:
        if self.database_url.startswith("sqlite"):
            return "sqlite"
        if self.database_url.startswith("postgresql"):
            return "postgresql"
        return "other"


def get_settings(**overrides) -> Settings:
    """Read the settings from the environment (plus explicit overrides, for tests)."""
    return Settings(**overrides)
