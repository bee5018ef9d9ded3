"""Answers in the fan's language, end to end: ``python -m benchmarks.answer_language``
(switchboard environment; ``make bench-language``; 127.0.0.1 only; bounded; stops by itself).

Starts the real Rasa and action servers with the model of the current data (`make train`;
tests/support/rasa_servers.py, the bot's clock frozen in the season as the end-to-end tests
freeze it, so the figures do not depend on the day they are taken) and the switchboard under
uvicorn on a free 127.0.0.1 port (tests/api/conftest.py ``LiveServer``, a fresh SQLite database,
the trained triage model, Messenger pointed at the local fake Graph API of tests/api/fakes.py).
Every message of the Spanish held-out NLU file (tests/nlu/test_nlu_es.yml) and of the German one
(test_nlu_de.yml) is sent as a fan's first message of a new thread, once over REST
(``/webhooks/rest/webhook``, no declared language) and once over Messenger (a signed webhook
delivery; Messenger declares no language; the answer is what the fake Graph API was sent).

Per message it records:

- **detected**: the language the switchboard decided for the message (``messages.language`` in
  its database, what it sends Rasa as ``metadata.language``) is the file's language;
- **answered in**: the language of the answer, decided from its text by matching it against
  every text of data/answers.yml (and data/answers.reviewed.yml) with each ``{placeholder}`` a
  wildcard: a reply that *is* a rendered ``es`` variant is Spanish. The "not in your language"
  line before an English fallback is recognised and set aside (the answer is the English text
  after it; counted as ``notice``). A reply no answer text matches (the switchboard's own texts:
  handoff and holding replies) or several languages' texts match is given lingua's top language
  (triage's detector). The turn's language is that of its first reply text; ``method`` says how
  it was decided.

The last line is
``language es_answered_in_es=<pct> es_detected=<pct> de_answered_in_de=<pct> de_detected=<pct>``
(both channels together; per-channel lines above it); every message's result goes to
var/bench-language.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import string
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = {"es": ROOT / "tests" / "nlu" / "test_nlu_es.yml",
         "de": ROOT / "tests" / "nlu" / "test_nlu_de.yml"}
ANSWER_FILES = (ROOT / "data" / "answers.yml", ROOT / "data" / "answers.reviewed.yml")
NOTICE_KEY = "not_in_your_language"
CHANNELS = ("rest", "messenger")
REST = "/webhooks/rest/webhook"
MESSENGER = "/webhooks/messenger"
MIN_LITERAL = 6  # a template with less fixed text than this would match anything: not used


# --- pure parts ---------------------------------------------------------------------------------


def nlu_examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) of a Rasa NLU YAML file, entity markup removed (as Rasa reads it)."""
    import yaml

    examples: list[tuple[str, str]] = []
    for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
        if "intent" not in block:
            continue
        for line in (block.get("examples") or "").splitlines():
            if line.strip().startswith("- "):
                text = re.sub(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})", r"\1", line.strip()[2:])
                examples.append((text.strip(), block["intent"]))
    return examples


def template_pattern(template: str) -> re.Pattern[str] | None:
    """A template as a regular expression of its rendered texts: the fixed text literally, each
    ``{placeholder}`` any text. None when too little of it is fixed to say anything."""
    parts, literal = [], 0
    for text, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(text))
        literal += len(text.strip())
        if name is not None:
            parts.append(".+?")
    if literal < MIN_LITERAL:
        return None
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class AnswerTexts:
    """Every answer text by language, as patterns (answer key kept for the record)."""

    patterns: tuple[tuple[str, str, re.Pattern[str]], ...]  # (language, key, pattern)

    @classmethod
    def load(cls, paths: Sequence[Path] = ANSWER_FILES) -> AnswerTexts:
        import yaml

        found = []
        for path in paths:
            if not path.exists():
                continue
            answers = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("answers")
            for key, entry in (answers or {}).items():
                for language, templates in (entry or {}).items():
                    if not (isinstance(language, str) and len(language) == 2
                            and isinstance(templates, list)):
                        continue  # flags such as season_note
                    for template in templates:
                        pattern = template_pattern(str(template))
                        if pattern is not None:
                            found.append((language, key, pattern))
        return cls(tuple(found))

    def languages_of(self, text: str, *, notice: bool = False) -> set[str]:
        """The languages whose texts ``text`` is a rendering of (``notice``: only the
        "not in your language" line)."""
        return {language for language, key, pattern in self.patterns
                if (key == NOTICE_KEY) == notice and pattern.fullmatch(text)}


@dataclass(frozen=True)
class ReplyLanguage:
    language: str | None  # None: nothing to judge (no text)
    method: str  # template | lingua | ambiguous->lingua | none
    notice: str | None = None  # the language of a "not in your language" line before it


def reply_language(text: str, answers: AnswerTexts, lingua) -> ReplyLanguage:
    """The language of one reply text (``lingua``: text -> {code: confidence})."""
    text = text.strip()
    notice = None
    first, newline, rest = text.partition("\n")
    if newline and rest.strip():
        said = answers.languages_of(first.strip(), notice=True)
        if len(said) == 1:
            notice, text = said.pop(), rest.strip()
    if not text:
        return ReplyLanguage(None, "none", notice)
    matched = answers.languages_of(text)
    if len(matched) == 1:
        return ReplyLanguage(next(iter(matched)), "template", notice)
    confidences = dict(lingua(text))
    if matched:  # the same text in several languages: lingua picks among them
        confidences = {code: value for code, value in confidences.items() if code in matched}
        method = "ambiguous->lingua"
    else:
        method = "lingua"
    language = max(confidences, key=confidences.__getitem__) if confidences else None
    return ReplyLanguage(language, method, notice)


@dataclass
class Turn:
    target: str  # the file's language
    channel: str
    text: str
    intent: str  # the file's label
    detected: str | None = None  # messages.language
    predicted: str | None = None  # messages.intent (what the bot made of it)
    replies: list[str] = field(default_factory=list)
    answered: str | None = None  # the first reply's language
    method: str = "none"
    notice: str | None = None
    other_languages: list[str] = field(default_factory=list)  # later replies not in `answered`
    seconds: float = 0.0
    error: str | None = None


def judge(turn: Turn, answers: AnswerTexts, lingua) -> None:
    """Fill ``answered``/``method``/``notice``/``other_languages`` from ``turn.replies``."""
    judged = [reply_language(text, answers, lingua) for text in turn.replies if text.strip()]
    judged = [j for j in judged if j.language is not None] or judged
    if not judged:
        return
    turn.answered, turn.method = judged[0].language, judged[0].method
    turn.notice = next((j.notice for j in judged if j.notice), None)
    turn.other_languages = sorted({j.language for j in judged[1:]
                                   if j.language and j.language != turn.answered})


def share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def figures(turns: Sequence[Turn], target: str) -> dict[str, Any]:
    total = len(turns)
    answered = Counter(turn.answered or "none" for turn in turns)
    return {
        "messages": total,
        "answered_in_target": answered[target],
        "answered_in_target_pct": share(answered[target], total),
        "detected_target": sum(turn.detected == target for turn in turns),
        "detected_target_pct": share(sum(turn.detected == target for turn in turns), total),
        "answered_in": dict(answered.most_common()),
        "detected_as": dict(Counter(turn.detected or "none" for turn in turns).most_common()),
        "notice_then_english": sum(turn.notice == target and turn.answered == "en"
                                   for turn in turns),
        "mixed": sum(bool(turn.other_languages) for turn in turns),
        "methods": dict(Counter(turn.method for turn in turns).most_common()),
        "errors": sum(turn.error is not None for turn in turns),
        "p50_s": round(sorted(t.seconds for t in turns)[total // 2], 3) if total else None,
    }


def result_line(by_target: dict[str, dict[str, Any]]) -> str:
    es, de = by_target.get("es", {}), by_target.get("de", {})
    return (f"language es_answered_in_es={es.get('answered_in_target_pct', 0.0):.1f} "
            f"es_detected={es.get('detected_target_pct', 0.0):.1f} "
            f"de_answered_in_de={de.get('answered_in_target_pct', 0.0):.1f} "
            f"de_detected={de.get('detected_target_pct', 0.0):.1f}")


# --- the run ------------------------------------------------------------------------------------


class Bench:
    """The switchboard (in this process, on its own thread and loop) and the fans' traffic."""

    def __init__(self, server, graph, secret: str, timeout_s: float) -> None:
        self.server, self.graph, self.secret, self.timeout_s = server, graph, secret, timeout_s
        self.services = server.app.state.services

    def _incoming(self, channel: str, channel_message_id: str):
        """(language, intent, relay_status, conversation_id) of the stored fan message."""
        from sqlalchemy import select

        from api.conversations.models import Message
        from api.enums import MessageKind

        with self.services.db.session() as session:
            message = session.scalars(select(Message).where(
                Message.kind == MessageKind.incoming,
                Message.fan_message_id == channel_message_id)).first()
            if message is None or str(message.channel) != channel:
                return None
            return (message.language, message.intent, str(message.relay_status),
                    message.conversation_id)

    def _delivered(self, conversation_id: int) -> bool:
        """Every reply of the thread has left the outbox (sent or given up)."""
        from sqlalchemy import select

        from api.conversations.models import Message
        from api.enums import DeliveryStatus, MessageKind

        with self.services.db.session() as session:
            outgoing = session.scalars(select(Message).where(
                Message.conversation_id == conversation_id,
                Message.kind == MessageKind.outgoing)).all()
            return bool(outgoing) and all(m.delivery_status != DeliveryStatus.pending
                                          for m in outgoing)

    async def rest(self, http, turn: Turn, n: int) -> None:
        message_id = f"bench-{uuid.uuid4().hex}"
        r = await http.post(REST, json={"sender": f"lang-rest-{turn.target}-{n}",
                                        "message": turn.text,
                                        "metadata": {"message_id": message_id}})
        r.raise_for_status()
        turn.replies = [item["text"] for item in r.json() if item.get("text")]
        stored = await asyncio.to_thread(self._incoming, "rest", message_id)
        if stored is None:
            raise RuntimeError("the message was not stored")
        turn.detected, turn.predicted = stored[0], stored[1]

    async def messenger(self, http, turn: Turn, n: int) -> None:
        from api.channels.messenger.signature import sign

        psid, mid = f"lang-ms-{turn.target}-{n}-{uuid.uuid4().hex[:6]}", f"m_{uuid.uuid4().hex}"
        body = {"object": "page", "entry": [{"id": "page-1", "time": int(time.time() * 1000),
                                             "messaging": [{
                                                 "sender": {"id": psid},
                                                 "recipient": {"id": "page-1"},
                                                 "timestamp": int(time.time() * 1000),
                                                 "message": {"mid": mid, "text": turn.text}}]}]}
        raw = json.dumps(body, ensure_ascii=True).encode()
        r = await http.post(MESSENGER, content=raw, headers={
            "content-type": "application/json", "x-hub-signature-256": sign(self.secret, raw)})
        r.raise_for_status()
        deadline = time.monotonic() + self.timeout_s
        while True:
            stored = await asyncio.to_thread(self._incoming, "messenger", mid)
            if (stored is not None and stored[2] != "pending"
                    and await asyncio.to_thread(self._delivered, stored[3])):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer within {self.timeout_s:.0f} s "
                                   f"(relay {stored[2] if stored else 'not stored'})")
            await asyncio.sleep(0.05)
        turn.detected, turn.predicted = stored[0], stored[1]
        turn.replies = [call["body"]["message"]["text"] for call in list(self.graph.calls)
                        if call["body"].get("recipient", {}).get("id") == psid
                        and "text" in (call["body"].get("message") or {})]

    async def run(self, turns: Sequence[Turn], concurrency: int, deadline: float) -> None:
        import httpx

        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.server.url,
                                     timeout=self.timeout_s) as http:

            async def one(n: int, turn: Turn) -> None:
                async with gate:
                    if time.monotonic() > deadline:
                        turn.error = "not sent: the run's time limit was reached"
                        return
                    started = time.perf_counter()
                    try:
                        await getattr(self, turn.channel)(http, turn, n)
                    except Exception as error:  # recorded per message; the run goes on
                        turn.error = f"{type(error).__name__}: {error}"[:300]
                    turn.seconds = time.perf_counter() - started

            await asyncio.gather(*(one(n, turn) for n, turn in enumerate(turns)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", default=",".join(CHANNELS),
                        help="comma-separated: rest, messenger (default both)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N messages of each file (a quick look)")
    parser.add_argument("--concurrency", type=int, default=3,
                        help="fans talking at once (default 3)")
    parser.add_argument("--turn-timeout", type=float, default=90.0,
                        help="seconds one turn may take (default 90)")
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="stop sending after this long (default 30); unsent messages are "
                             "reported, and the exit code is 1")
    parser.add_argument("--frozen-now", default=None,
                        help="the bot's clock (default: the end-to-end tests' in-season date)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-language.json")
    parser.add_argument("--show-misses", action="store_true",
                        help="print the messages not answered in their language")
    args = parser.parse_args(argv)
    args.channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if not args.channels or set(args.channels) - set(CHANNELS):
        parser.error(f"--channels: choose from {', '.join(CHANNELS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from api.main import migrate
    from api.settings import Settings
    from api.triage.emotion import META_FILE
    from api.triage.engine import DEFAULT_MODEL_DIR, Triage
    from tests.api.conftest import BOT_FROZEN_NOW, LiveServer
    from tests.api.fakes import FakeGraph
    from tests.support.rasa_servers import start_bot_servers

    if not (DEFAULT_MODEL_DIR / META_FILE).is_file():
        print(f"answer_language: no triage model in {DEFAULT_MODEL_DIR}: run `make train-triage`",
              file=sys.stderr)
        return 2
    turns = [Turn(target, channel, text, intent)
             for channel in args.channels
             for target, path in FILES.items()
             for text, intent in nlu_examples(path)[:args.limit]]
    answers = AnswerTexts.load()
    started = time.monotonic()
    print(f"loading triage, the bot ({len(turns)} turns to send)...", flush=True)
    triage = Triage.load(DEFAULT_MODEL_DIR)
    lingua = triage.languages.confidences
    with contextlib.ExitStack() as stack:
        try:
            bot = stack.enter_context(start_bot_servers(
                frozen_now=args.frozen_now or BOT_FROZEN_NOW))
        except RuntimeError as error:  # no trained model, or it did not start
            print(f"answer_language: {error}", file=sys.stderr)
            return 2
        graph = FakeGraph().start()
        stack.callback(graph.stop)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-language-"))
        url = f"sqlite:///{tmp}/switchboard.db"
        migrate(url)
        secret = secrets.token_hex(16)
        settings = Settings(
            _env_file=None, APP_ENV="local", DATABASE_URL=url, DB_AUTO_MIGRATE=False,
            STAFF_FILE=str(ROOT / "data" / "staff.yml"),
            RASA_URL=bot.rasa_url, RASA_TOKEN=bot.token, ACTION_SERVER_URL=bot.actions_url,
            RASA_TIMEOUT_S=args.turn_timeout / 2,
            MESSENGER_APP_SECRET=secret, MESSENGER_VERIFY_TOKEN=secrets.token_hex(8),
            MESSENGER_PAGE_TOKEN=secrets.token_hex(8), MESSENGER_GRAPH_URL=graph.url + "/v23.0")
        server = LiveServer(settings, triage=triage).start()
        stack.callback(server.stop)
        print(f"bot model {bot.model.name}; switchboard {server.url}; sending...", flush=True)
        send_started = time.monotonic()
        asyncio.run(Bench(server, graph, secret, args.turn_timeout).run(
            turns, args.concurrency, deadline=started + args.max_minutes * 60))
        send_seconds = time.monotonic() - send_started

    for turn in turns:
        judge(turn, answers, lingua)
    report: dict[str, Any] = {"model": bot.model.name, "frozen_now": args.frozen_now
                              or BOT_FROZEN_NOW, "send_seconds": round(send_seconds, 1),
                              "concurrency": args.concurrency, "by_channel": {}, "overall": {}}
    for target in FILES:
        for channel in args.channels:
            chosen = [t for t in turns if t.target == target and t.channel == channel]
            report["by_channel"][f"{target}/{channel}"] = figures(chosen, target)
        report["overall"][target] = figures([t for t in turns if t.target == target], target)
    report["turns"] = [asdict(turn) for turn in turns]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")

    if args.show_misses:
        for turn in turns:
            if turn.answered != turn.target:
                print(f"  miss {turn.target}/{turn.channel}: {turn.text!r} ({turn.intent}) "
                      f"detected={turn.detected} predicted={turn.predicted} "
                      f"answered={turn.answered} via {turn.method}"
                      f"{' notice=' + turn.notice if turn.notice else ''}"
                      f"{' error=' + turn.error if turn.error else ''}"
                      f" -> {(turn.replies or [''])[0][:90]!r}")
    for name, f in [*report["by_channel"].items(),
                    *((f"{target}/both", f) for target, f in report["overall"].items())]:
        target = name.split("/")[0]
        print(f"{name}: answered in {target} {f['answered_in_target']}/{f['messages']} "
              f"({f['answered_in_target_pct']:.1f}%), detected {target} "
              f"{f['detected_target']}/{f['messages']} ({f['detected_target_pct']:.1f}%); "
              f"answered in {f['answered_in']}; detected as {f['detected_as']}; "
              f"{target} notice + English {f['notice_then_english']}; mixed {f['mixed']}; "
              f"decided by {f['methods']}; errors {f['errors']}; turn p50 {f['p50_s']} s")
    print(f"sent {len(turns)} turns in {send_seconds:.0f} s (concurrency {args.concurrency}); "
          f"details in {args.out}")
    print(result_line(report["overall"]))
    return 1 if any(turn.error for turn in turns) else 0


if __name__ == "__main__":
    sys.exit(main())
