"""The switchboard's logging in one place: format, levels, and what never reaches a line.

``python -m api`` hands :func:`log_config` to uvicorn, which applies it before the app is built,
to its own loggers and the root logger alike. Three guards keep secrets out of the logs:

- httpx and httpcore log at WARNING: at INFO they print every request URL, and Rasa's API takes
  its token only as ``?token=``;
- the access log prints the path without its query string (Meta's handshake sends
  ``hub.verify_token`` in one, socket.io its session id, the review console the text searched);
- every handler redacts the values of secret query parameters wherever a URL shows up, and, as a
  safety net, every secret value the settings hold (tracebacks included).

``LOG_FORMAT=json`` writes one JSON object per line (python-json-logger) with a fixed set of
fields: time, level, logger, message, request_id, conversation_id, exc_info. The redaction
filters run before either formatter. The request id comes from a balancer's ``X-Request-ID``
(or is made up) and goes back in the response (:class:`RequestIds`); the conversation id is set
where a fan message is received and where the relay runs a turn (:func:`bind_conversation`).
Log ids, never a fan's words.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import PLACEHOLDER_SECRETS, Settings

REDACTED = "[redacted]"
# Query parameters whose values are credentials (Rasa, Graph, Meta's handshake, OAuth).
SECRET_PARAMS = ("token", "access_token", "auth_token", "hub.verify_token", "hub.challenge",
                 "appsecret_proof", "client_secret", "fb_exchange_token", "password", "api_key")
_SECRET_PARAM = re.compile(
    r"(?i)((?:^|[?&;\s])(?:" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")=)[^&;\s\"'#]*")
# Settings whose whole value is a secret: by name (present and future), plus URLs with a
# secret path (a Slack-style incoming webhook is its own credential).
SECRET_SUFFIXES = ("_secret", "_token", "_password", "_key")
SECRET_URLS = ("alert_webhook_url",)
# Shorter values would redact ordinary words; every real secret is longer.
MIN_SECRET_CHARS = 6
# Libraries that log each request URL at INFO.
QUIET_LOGGERS = ("httpx", "httpcore")
# Libraries that give their logger a stderr handler of their own when imported (spaCy): their
# lines would skip the format and the redaction, and be printed twice.
OWN_HANDLER_LOGGERS = ("spacy",)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The JSON line's fields (renamed from LogRecord attributes); nothing else reaches it.
JSON_FIELDS = {"asctime": "time", "levelname": "level", "name": "logger", "message": "message",
               "request_id": "request_id", "conversation_id": "conversation_id"}
REQUEST_ID_HEADER = "X-Request-ID"
# A balancer's request id is taken as it is when it looks like one (no spaces, quotes or
# control characters that could forge a log line); anything else is replaced.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

# The ids on every line logged while a request or a turn runs (None outside one).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
conversation_id: ContextVar[int | None] = ContextVar("conversation_id", default=None)


def adopt_library_loggers() -> None:
    """Drop the handlers libraries gave their own loggers (call after importing them): their
    lines then reach the switchboard's handlers only."""
    for name in OWN_HANDLER_LOGGERS:
        library = logging.getLogger(name)
        for handler in library.handlers[:]:
            library.removeHandler(handler)
        library.propagate = True


def bind_request() -> None:
    """Give this task (and its children) a request id of its own when it has none."""
    if request_id.get() is None:
        request_id.set(uuid.uuid4().hex)


def bind_conversation(conversation: int | None) -> None:
    """Put ``conversation`` on the lines logged from here on in this task (and its children)."""
    conversation_id.set(conversation)


class ContextIds(logging.Filter):
    """Copies the request and conversation ids of the running task onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.conversation_id = conversation_id.get()
        return True


class JsonLines(JsonFormatter):
    """One JSON object per record, with :data:`JSON_FIELDS` (and a traceback when there is
    one) only: ``extra=`` attributes never reach a line unredacted."""

    KEEP = frozenset(JSON_FIELDS.values()) | {"exc_info", "stack_info"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(list(JSON_FIELDS), rename_fields=dict(JSON_FIELDS),
                         rename_fields_keep_missing=True, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_text:
            # The redaction filter already rendered (and redacted) the traceback: the library
            # would render it again from exc_info, secrets and all.
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None})
        return super().format(record)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in [k for k in log_data if k not in self.KEEP]:
            del log_data[key]


class RequestIds:
    """ASGI middleware: each request's id (the balancer's ``X-Request-ID`` or a new one) on its
    log lines and in its response's ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                      if k == b"x-request-id"), "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request_token = request_id.set(rid)
        conversation_token = conversation_id.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            conversation_id.reset(conversation_token)
            request_id.reset(request_token)


def secret_values(settings: Settings) -> set[str]:
    """Every secret the settings hold: tokens, passwords, URL passwords, secret URLs. The
    public local-mode defaults are left out (the local-mode banner prints the demo password)."""
    found: set[str] = set()
    for name, value in settings.model_dump().items():
        if not isinstance(value, str) or not value:
            continue
        if name.endswith(SECRET_SUFFIXES) or name in SECRET_URLS:
            found.add(value)
        elif name.endswith("_url"):
            password = urlsplit(value).password
            if password:
                found.update({password, unquote(password)})
    return {v for v in found
            if len(v) >= MIN_SECRET_CHARS and v.strip().lower() not in PLACEHOLDER_SECRETS}


class RedactSecrets(logging.Filter):
    """Redacts secret query values and known secret values in a record's message, arguments and
    traceback. Arguments stay arguments (uvicorn's access formatter unpacks them)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, values))) if values else None

    def redact(self, text: str) -> str:
        text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
        return self._values.sub(REDACTED, text) if self._values else text

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        else:
            record.msg = self._arg(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(self._arg(a) for a in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _arg(self, value: Any) -> Any:
        if value is None or isinstance(value, int | float):
            return value  # %d and %f need numbers; numbers are not secrets
        text = value if isinstance(value, str) else str(value)  # e.g. an httpx.URL
        redacted = self.redact(text)
        return value if redacted == text else redacted


class PathOnly(logging.Filter):
    """uvicorn's request lines (HTTP access, WebSocket accepted): paths without query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_path_only(a) for a in record.args)
        return True


def _path_only(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/") and "?" in value:
        return value.partition("?")[0] + "?..."
    return value


def log_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for ``uvicorn.run(log_config=...)``."""
    level = settings.log_level.upper()
    guard = {"()": RedactSecrets, "secrets": sorted(secret_values(settings))}
    json_lines = settings.log_format == "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"secrets": guard, "path_only": {"()": PathOnly},
                    "context": {"()": ContextIds}},
        "formatters": {
            "plain": {"format": FORMAT},
            "access": {"()": "uvicorn.logging.AccessFormatter", "use_colors": False,
                       "fmt": '%(asctime)s %(levelname)s %(name)s: %(client_addr)s - '
                              '"%(request_line)s" %(status_code)s'},
            "json": {"()": JsonLines},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                       "formatter": "json" if json_lines else "plain",
                       "filters": ["secrets", "context"]},
            "access": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                       "formatter": "json" if json_lines else "access",
                       "filters": ["secrets", "context"]},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "filters": ["path_only"]},
            "uvicorn.access": {"level": level, "handlers": ["access"], "filters": ["path_only"],
                               "propagate": False},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }
