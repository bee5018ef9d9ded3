"""Local stand-ins for Rasa (the switchboard channel contract) and Meta's Graph API.

Plain ``http.server`` servers on free 127.0.0.1 ports, in threads, recording every call.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    handler_cls: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._make_handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _make_handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without TCP_NODELAY, Nagle plus the
                # client's delayed ACK add ~40 ms to every response
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("content-length") or 0)
                return self.rfile.read(n) if n else b""

            def send_json(self, status: int, obj: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                owner.handle(self, "GET", b"")

            def do_POST(self) -> None:
                owner.handle(self, "POST", self._body())

            def do_PUT(self) -> None:
                owner.handle(self, "PUT", self._body())

        return Handler

    def handle(self, h, method: str, body: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeRasa(_Server):
    """Speaks the switchboard channel contract, the tracker API, /status and the REST channel.

    ``mode``: ``ok``; ``refuse`` (drops the connection, the turn does not run); ``slow``
    (the turn runs, the answer comes after ``delay`` seconds); ``garbage`` (the turn runs, the
    answer is not JSON); ``error`` (HTTP 500, the turn does not run).
    """

    TOKEN = "fake-rasa-token"

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.delay = 0.0
        self.calls: list[dict[str, Any]] = []
        self.tracker_calls = 0
        self.trackers: dict[str, list[dict[str, Any]]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        # The model swap (``PUT /webhooks/switchboard/model``): what /status names, each load
        # asked for, and ``refuse_models`` (answer 400: cannot load it). ``down``: every
        # request's connection is dropped, as a stopped process's would be refused.
        self.model_file = "fake.tar.gz"
        self.model_loads: list[str] = []
        self.refuse_models = False
        self.down = False

    def replies(self, sender: str, text: str) -> list[dict[str, Any]]:
        if text.startswith("buttons"):
            return [{"recipient_id": sender, "text": "Pick one",
                     "buttons": [{"title": "Tickets", "payload": "/ask_tickets"},
                                 {"title": "Talk to a person", "payload": "/request_human"}]}]
        if text.startswith("human"):
            return [{"recipient_id": sender, "text": "Let me find someone for you."},
                    {"recipient_id": sender,
                     "custom": {"handoff_request": {"topic": "general", "reason": "fan asked"}}}]
        if text.startswith("lost"):
            return [{"recipient_id": sender, "text": "I've logged your report."},
                    {"recipient_id": sender, "custom": {"lost_property": {
                        "item": "black wallet", "when": "saturday night",
                        "description": "leather, with a red zip", "contact": "fan@example.org"}}}]
        if text.startswith("image"):
            return [{"recipient_id": sender, "image": "https://example.org/map.png"}]
        if text.startswith("long"):
            return [{"recipient_id": sender, "text": ("word " * 900).strip()}]
        if text.startswith("huh"):
            return [{"recipient_id": sender, "text": "Sorry, I didn't quite get that."}]
        return [{"recipient_id": sender, "text": f"echo: {text}"}]

    def _run_turn(self, sender: str, text: str, message_id: str | None) -> list[dict[str, Any]]:
        replies = self.replies(sender, text)
        # "huh ..." is a message the bot did not understand
        intent = ({"name": "nlu_fallback", "confidence": 0.3} if text.startswith("huh")
                  else {"name": "echo", "confidence": 0.91})
        parse = {"text": text, "intent": intent, "entities": [], "intent_ranking": [intent]}
        with self.lock:
            events = self.trackers.setdefault(sender, [])
            events.append({"event": "user", "text": text, "message_id": message_id,
                           "parse_data": parse})
            for r in replies:
                data = {k: r[k] for k in ("buttons", "image", "custom") if k in r}
                events.append({"event": "bot", "text": r.get("text"), "data": data})
        return replies

    def turns_for(self, sender: str) -> int:
        return sum(1 for e in self.trackers.get(sender, []) if e["event"] == "user")

    def handle(self, h, method: str, body: bytes) -> None:
        url = urlparse(h.path)
        if self.down:
            h.close_connection = True
            return h.connection.shutdown(socket.SHUT_RDWR)
        if method == "GET" and url.path == "/status":
            if parse_qs(url.query).get("token") != [self.TOKEN]:
                return h.send_json(401, {"message": "unauthorized"})
            return h.send_json(200, {"model_file": self.model_file, "model_id": "fake"})
        if method == "PUT" and url.path == "/webhooks/switchboard/model":
            if parse_qs(url.query).get("token") != [self.TOKEN]:
                return h.send_json(401, {"error": "a valid token is required"})
            model_file = json.loads(body)["model_file"]
            with self.lock:
                self.model_loads.append(model_file)
            if self.refuse_models:
                return h.send_json(400, {"error": "could not load the model"})
            self.model_file = model_file.rsplit("/", 1)[-1]  # Rasa's /status names the file
            h.send_response(204)
            h.send_header("content-length", "0")
            h.end_headers()
            return None
        is_tracker = url.path.startswith("/conversations/") and url.path.endswith("/tracker")
        if method == "GET" and is_tracker:
            self.tracker_calls += 1
            if self.mode in ("refuse",):
                h.close_connection = True
                return h.connection.shutdown(socket.SHUT_RDWR)
            sender = unquote(url.path[len("/conversations/"):-len("/tracker")])
            if parse_qs(url.query).get("token") != [self.TOKEN]:
                return h.send_json(401, {"message": "unauthorized"})
            with self.lock:
                events = list(self.trackers.get(sender, []))
            return h.send_json(200, {"sender_id": sender, "events": events})
        webhooks = ("/webhooks/switchboard/webhook", "/webhooks/rest/webhook")
        if method == "POST" and url.path in webhooks:
            data = json.loads(body)
            meta = data.get("metadata") or {}
            with self.lock:
                self.calls.append({"path": url.path, **data})
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                mode = self.mode
                if mode == "refuse":
                    h.close_connection = True
                    return h.connection.shutdown(socket.SHUT_RDWR)
                if mode == "error":
                    return h.send_json(500, {"error": "boom"})
                if self.delay:
                    time.sleep(self.delay)
                replies = self._run_turn(data["sender"], data["message"], meta.get("message_id"))
                if mode == "slow":
                    time.sleep(self.slow_s)
                if mode == "garbage":
                    return h.send_json(200, None, raw=b"<html>not json</html>")
                if url.path == "/webhooks/rest/webhook":
                    return h.send_json(200, replies)
                parse = self.trackers[data["sender"]][-1 - len(replies)]["parse_data"]
                return h.send_json(200, {"messages": replies, "parse": parse,
                                         "message_id": meta.get("message_id")})
            finally:
                with self.lock:
                    self.in_flight -= 1
        h.send_json(404, {"error": "not found"})

    slow_s = 1.5


class FakeActionServer(_Server):
    def handle(self, h, method: str, body: bytes) -> None:
        if urlparse(h.path).path == "/health":
            return h.send_json(200, {"status": "ok"})
        h.send_json(404, {})


class FakeGraph(_Server):
    """Meta's Graph API ``/v*/me/messages``: records calls, answers from a script.

    Like Graph, takes the access token from an ``Authorization: Bearer`` header or an
    ``access_token`` query parameter; each call records which it was (``token``, ``query``)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []  # responses to use first, in order

    def fail_next(self, *responses: tuple[int, dict[str, Any]]) -> None:
        self.script.extend(responses)

    @staticmethod
    def error(code: int, subcode: int | None = None, status: int = 400) -> tuple[int, dict]:
        err: dict[str, Any] = {"message": f"error {code}", "type": "OAuthException", "code": code}
        if subcode:
            err["error_subcode"] = subcode
        return status, {"error": err}

    def messages(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if "message" in c["body"]]

    def personas(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"].endswith("/personas")]

    @staticmethod
    def _call(h, url, body: bytes) -> dict[str, Any]:
        query = parse_qs(url.query)
        scheme, _, bearer = (h.headers.get("authorization") or "").partition(" ")
        token = bearer if scheme.lower() == "bearer" else (query.get("access_token") or [None])[0]
        return {"path": url.path, "query": query, "token": token, "body": json.loads(body),
                "at": time.monotonic()}

    def handle(self, h, method: str, body: bytes) -> None:
        url = urlparse(h.path)
        if method == "POST" and url.path.endswith("/personas"):
            with self.lock:
                self.calls.append(self._call(h, url, body))
            return h.send_json(200, {"id": "persona_" + uuid.uuid4().hex[:8]})
        if method == "POST" and url.path.endswith("/me/messages"):
            with self.lock:
                self.calls.append(self._call(h, url, body))
                scripted = self.script.pop(0) if self.script else None
            if scripted:
                return h.send_json(*scripted)
            data = json.loads(body)
            if "sender_action" in data:
                return h.send_json(200, {"recipient_id": data["recipient"]["id"]})
            return h.send_json(200, {"recipient_id": data["recipient"]["id"],
                                     "message_id": "m_" + uuid.uuid4().hex})
        h.send_json(404, {"error": {"message": "unknown path", "code": 803}})


class AlertReceiver(_Server):
    """A Slack-compatible incoming webhook: records the JSON bodies it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []

    def handle(self, h, method: str, body: bytes) -> None:
        if method == "POST":
            with self.lock:
                self.received.append(json.loads(body))
            return h.send_json(200, {"ok": True})
        h.send_json(404, {})
