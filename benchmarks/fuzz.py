"""Schemathesis against the switchboard's OpenAPI schema (`make fuzz`).

    python -m benchmarks.fuzz [--examples N] [--postgresql] [--seed N]

Everything runs on free 127.0.0.1 ports over a temporary directory, so nothing real is touched:
a copy of the Rasa project (annotations are written there), its own database (SQLite, or with
``--postgresql`` a fresh database on 127.0.0.1:5432, dropped at the end), a registry whose only
model is a stand-in, a fake Rasa (turns, status, model swap), a fake action server, a fake Graph
API, a fake trainer (``BOT_VENV`` whose ``rasa`` and ``python`` write stand-in models and
reports) and the switchboard under uvicorn in local mode with Messenger on.

Every operation of the schema except the event stream (SSE never ends) gets ``N`` generated
requests with schema-valid data and ``N`` with schema-invalid data, each with a staff token
(an operator's for the operators' API, a supervisor's elsewhere); Messenger bodies are signed in
a request hook (``MessengerSignature``); after a call that may revoke a token (sign-out,
password change, anything under ``/api/v1/auth/``) or any 401 the fuzzer checks its tokens and
signs in again. Counted: 5xx responses (``server_errors``) and responses the schema
does not allow (``schema_violations``: status code, content type or body not as declared).

The last line: ``fuzz operations=<n> examples=<n> server_errors=<n> schema_violations=<n>``;
the exit status is 1 unless both counts are 0.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, wait_http_ok  # noqa: E402
from tests.api.fakes import FakeActionServer, FakeGraph, FakeRasa  # noqa: E402

PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
APP_SECRET = "fuzz-app-secret-0123456789"
PASSWORD = "fuzz-demo-password"
SUPERVISOR, OPERATOR = "laura", "sam"
OPERATOR_PREFIXES = ("/api/v1/review", "/api/v1/training", "/api/v1/models")
SKIPPED_PATHS = {"/api/v1/events"}  # server-sent events: the response never ends
PROJECT_FILES = ("config.yml", "domain.yml", "credentials.yml", "endpoints.yml")
PROJECT_DIRS = ("data", "bot")


class FuzzRasa(FakeRasa):
    """The test suite's fake Rasa, plus the channel's model swap (``PUT .../model`` → 204)."""

    def _make_handler(self):
        handler = super()._make_handler()
        owner = self

        class Handler(handler):
            def do_PUT(self) -> None:
                self._body()
                if self.path.split("?")[0].endswith("/model"):
                    self.send_response(204)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                owner.handle(self, "PUT", b"")

        return Handler


# -- the temporary project --------------------------------------------------------------------
def copy_project(target: Path) -> Path:
    """The files `rasa train` and the review API read, without reviewed additions."""
    target.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns(
            "*.reviewed.yml", "reviewed.yml", "reviewed.tsv", "__pycache__"))
    return target


FAKE_RASA_CLI = """\
import sys
from pathlib import Path

args = sys.argv[1:]
if args[:1] == ["train"]:
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / (args[args.index("--fixed-model-name") + 1] + ".tar.gz")).write_bytes(b"stand-in")
print("fake rasa", " ".join(args[:2]))
"""

FAKE_PYTHON = """\
import json
import sys
from pathlib import Path

args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
if args[0].endswith("evaluate_model.py"):
    per_intent = {"greet": {"f1": 0.95, "support": 5}, "goodbye": {"f1": 0.9, "support": 5}}
    report = {"nlu": {"accuracy": 0.93, "macro_f1": 0.92, "weighted_f1": 0.92, "examples": 10,
                      "per_intent": per_intent}}
    (out / "report.json").write_text(json.dumps(report))
else:
    (out / "comparison.json").write_text(json.dumps({"note": "fake comparison"}))
print("progress evaluate 100 done")
"""


def fake_trainer(venv: Path) -> Path:
    """A ``BOT_VENV`` whose ``rasa`` and ``python`` only write stand-in files (seconds, no TF)."""
    (venv / "bin").mkdir(parents=True)
    for name, body in (("rasa", FAKE_RASA_CLI), ("python", FAKE_PYTHON)):
        path = venv / "bin" / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    return venv


def seed(database_url: str, models_dir: Path) -> None:
    """Migrate, and make a stand-in the registry's served model (activation has a target)."""
    from api.db import Database
    from api.events import InProcessEventBus
    from api.main import migrate
    from api.registry import service as registry

    migrate(database_url)
    baseline = models_dir / "bot-baseline.tar.gz"
    baseline.parent.mkdir(parents=True, exist_ok=True)
    baseline.write_bytes(b"stand-in for the served model")
    db = Database(database_url, InProcessEventBus())
    with db.session() as session:
        registry.ensure_serving_flow(session, baseline=baseline, by="fuzz")
    db.dispose()


def reset_passwords(database_url: str) -> None:
    """Back to the demo password (a fuzzed password change may have hit the right one)."""
    from api.auth import service as auth
    from api.db import Database
    from api.events import InProcessEventBus

    db = Database(database_url, InProcessEventBus())
    with db.session() as session:
        auth.reset_demo_passwords(session=session, password=PASSWORD)
        session.commit()
    db.dispose()


# -- the run ----------------------------------------------------------------------------------
class Staff:
    """Bearer headers for the supervisor and the operator, renewed when a call revoked them."""

    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url, self.database_url = base_url, database_url
        self.headers: dict[str, dict[str, str]] = {}
        self.sign_ins = 0

    def sign_in(self, handle: str) -> None:
        for attempt in range(2):
            r = httpx.post(f"{self.base_url}/api/v1/auth/login",
                           json={"handle": handle, "password": PASSWORD}, timeout=30)
            if r.status_code == 200:
                self.headers[handle] = {"Authorization": f"Bearer {r.json()['access_token']}"}
                self.sign_ins += 1
                return
            if attempt == 0:
                reset_passwords(self.database_url)
        raise RuntimeError(f"cannot sign in as {handle}: {r.status_code} {r.text[:200]}")

    def for_path(self, path: str) -> dict[str, str]:
        handle = OPERATOR if path.startswith(OPERATOR_PREFIXES) else SUPERVISOR
        return self.headers[handle]

    def renew_if_revoked(self) -> None:
        for handle, headers in list(self.headers.items()):
            r = httpx.get(f"{self.base_url}/api/v1/staff/me", headers=headers, timeout=30)
            if r.status_code == 401:
                self.sign_in(handle)


class MessengerSignature(requests.auth.AuthBase):
    """Signs the body exactly as sent, as Meta does (``X-Hub-Signature-256``)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        r.headers["X-Hub-Signature-256"] = f"sha256={digest}"
        return r


class Tally:
    def __init__(self) -> None:
        self.examples = 0
        self.server_errors = 0
        self.schema_violations = 0
        self.errors: Counter[str] = Counter()  # server errors by operation and status
        self.violations: Counter[str] = Counter()  # failed checks by operation and check

    def report(self) -> None:
        for title, found in (("server errors", self.errors), ("schema violations",
                                                                self.violations)):
            if found:
                print(f"{title}:")
            for text, count in found.most_common(40):
                print(f"  {count:4d} x {text}")


def seed_conversations(base_url: str) -> None:
    """A few threads (one handed to a person) so ids the fuzzer tries exist."""
    for i, text in enumerate(("hello there", "human please", "lost my wallet", "buttons")):
        r = httpx.post(f"{base_url}/webhooks/rest/webhook",
                       json={"sender": f"fuzz-fan-{i}", "message": text}, timeout=30)
        r.raise_for_status()


def run_schemathesis(base_url: str, staff: Staff, examples: int, seed_value: int,
                     tally: Tally) -> int:
    """Fuzz every operation; returns how many operations ran."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path not in SKIPPED_PATHS]
    session = requests.Session()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, base_url=base_url, session=session, staff=staff,
                           examples=examples, seed_value=seed_value, tally=tally)
    return len(operations)


def fuzz_operation(operation, mode, *, base_url: str, session: requests.Session, staff: Staff,
                   examples: int, seed_value: int, tally: Tally) -> None:
    """``examples`` generated requests (``mode``: schema-valid or not) to one operation."""
    import hypothesis
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    conformance = [status_code_conformance, content_type_conformance,
                   response_schema_conformance]
    label = f"{operation.method.upper()} {operation.path}"
    auth = MessengerSignature() if operation.path == "/webhooks/messenger" else None
    # sign-out, password change: calls that may end the fuzzer's own token
    revokes = operation.path != "/api/v1/auth/login" and (
        operation.path.startswith("/api/v1/auth/") or "password" in operation.path
        or "logout" in operation.path)

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                         phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck),
                         verbosity=hypothesis.Verbosity.quiet)
    @hypothesis.seed(seed_value)
    def one(case) -> None:
        headers = {**(case.headers or {}), **staff.for_path(operation.path)}
        response = case.call(base_url=base_url, session=session, headers=headers, auth=auth,
                             timeout=60)
        tally.examples += 1
        if response.status_code >= 500:
            tally.server_errors += 1
            tally.errors[f"{label}: {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=conformance)
        except FailureGroup as group:  # one exception per failed check
            tally.schema_violations += 1
            for failure in group.exceptions:
                title = getattr(failure, "title", type(failure).__name__)
                detail = str(failure).strip().splitlines()[-1][:200]
                tally.violations[f"{label} {response.status_code}: {title}: {detail}"] += 1
        if revokes or (response.status_code == 401 and operation.path.startswith("/api/v1/")
                       and operation.path != "/api/v1/auth/login"):
            staff.renew_if_revoked()

    try:
        one()
    except hypothesis.errors.Unsatisfiable:
        pass  # e.g. no schema-invalid request exists for an operation without parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int,
                        default=int(os.environ.get("FUZZ_EXAMPLES", "50")),
                        help="generated requests per operation and mode (FUZZ_EXAMPLES)")
    parser.add_argument("--postgresql", action="store_true",
                        help="a fresh database on 127.0.0.1:5432 instead of SQLite")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "14")))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="switchboard-fuzz-"))
    pg_name = None
    if args.postgresql:
        from sqlalchemy import create_engine, text

        pg_name = f"sb_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_name
    else:
        database_url = f"sqlite:///{work / 'switchboard.db'}"
    fakes = [FuzzRasa().start(), FakeActionServer().start(), FakeGraph().start()]
    rasa, actions, graph = fakes
    proc = None
    log_path = work / "switchboard.log"
    tally = Tally()
    try:
        project = copy_project(work / "project")
        models_dir = work / "models"
        seed(database_url, models_dir)
        port = free_port()
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "APP_ENV": "local",
            "DATABASE_URL": database_url, "DB_AUTO_MIGRATE": "false",
            "STAFF_FILE": str(ROOT / "data" / "staff.yml"),
            "DEMO_STAFF_PASSWORD": PASSWORD,
            "RASA_URL": rasa.url, "RASA_TOKEN": FakeRasa.TOKEN, "RASA_TIMEOUT_S": "5",
            "ACTION_SERVER_URL": actions.url + "/webhook",
            "MESSENGER_APP_SECRET": APP_SECRET, "MESSENGER_VERIFY_TOKEN": "fuzz-verify-token",
            "MESSENGER_PAGE_TOKEN": "fuzz-page-token",
            "MESSENGER_GRAPH_URL": graph.url + "/v23.0", "MESSENGER_BACKOFF_S": "0.01",
            "BOT_PROJECT_DIR": str(project), "MODELS_DIR": str(models_dir),
            "BOT_VENV": str(fake_trainer(work / "bot-venv")),
            "LOG_LEVEL": "warning",
        }
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                 "--no-access-log"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{base_url}/healthz", proc, timeout=180, log=log_path)
        seed_conversations(base_url)
        staff = Staff(base_url, database_url)
        staff.sign_in(SUPERVISOR)
        staff.sign_in(OPERATOR)
        operations = run_schemathesis(base_url, staff, args.examples, args.seed, tally)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in fakes:
            server.stop()
        if pg_name:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()

    tally.report()
    if tally.server_errors:
        server_log = log_path.read_text(errors="replace")
        print("server log (tail):")
        print(textwrap.indent(server_log[-6000:], "  "))
    backend = "postgresql" if args.postgresql else "sqlite"
    print(f"fuzz: {backend}, {args.examples} examples per operation and mode, seed {args.seed}, "
          f"{staff.sign_ins} sign-ins, {time.monotonic() - started:.0f} s")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz operations={operations} examples={tally.examples} "
          f"server_errors={tally.server_errors} schema_violations={tally.schema_violations}")
    return 0 if tally.server_errors == 0 and tally.schema_violations == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
