"""`make run`: start the whole system in the foreground; Ctrl-C or SIGTERM stops all of it.

Processes: the action server, the Rasa server (`--enable-api` with a token) and, when api/ is
present, the switchboard. Ports come from the environment (RASA_PORT=5005, ACTION_PORT=5055,
SWITCHBOARD_PORT=8000). Every server listens on 127.0.0.1 only; ACTION_HOST changes the action
server's interface (it has no authentication of its own). Works without a terminal (stdin
closed, output to a file, backgrounded). Standard library only.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bot_model  # noqa: E402

BOT_BIN = ROOT / ".venv-bot" / "bin"
API_PY = ROOT / ".venv" / "bin" / "python"


def log(message: str) -> None:
    print(f"[run] {message}", flush=True)


class Supervisor:
    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        # Each child gets its own process group, so stopping it stops its workers too.
        self.children[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        log(f"started {name} (pid {self.children[name].pid})")

    def stop(self, *_: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        log("stopping ...")
        for child in reversed(list(self.children.values())):
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in time; killing it")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log("stopped")

    def exited(self) -> str | None:
        return next((name for name, child in self.children.items()
                     if child.poll() is not None), None)


def bot_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of Rasa's processes: they read LOG_LEVEL too, and only in capitals (the
    switchboard's is lower case: Rasa would exit with "Unknown level")."""
    level = env.get("LOG_LEVEL")
    return {**env, "LOG_LEVEL": level.upper()} if level else dict(env)


def action_server_env(env: dict[str, str]) -> dict[str, str]:
    """rasa-sdk 3.6 has no interface flag: it binds SANIC_HOST, all interfaces when unset.
    Rasa keeps idle connections to the action server for 15 s (aiohttp); Sanic closes them after
    5 s by default, and Rasa sometimes reused one being closed ("Cannot write to closing
    transport": an answer without text, seen by `make bench-cluster` under load). Sanic keeps
    them longer than Rasa does."""
    return {**bot_env(env), "SANIC_HOST": env.get("ACTION_HOST") or "127.0.0.1",
            "SANIC_KEEP_ALIVE_TIMEOUT": env.get("SANIC_KEEP_ALIVE_TIMEOUT") or "20"}


def staff_handles() -> list[str]:
    """The demo accounts the switchboard creates in local mode (one per person in staff.yml)."""
    text = (ROOT / "data" / "staff.yml").read_text(encoding="utf-8")
    return re.findall(r"^\s*handle:\s*(\S+)", text, flags=re.MULTILINE)


def wait_ready(url: str, supervisor: Supervisor, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping:
        if supervisor.exited():
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    return False


def served_model(env: dict[str, str]) -> Path | None:
    """The registry's active model (the switchboard's database); on a first run, the model of
    the tracked data, which becomes the active one. BOT_MODEL overrides it (no registry)."""
    if env.get("BOT_MODEL"):
        return Path(env["BOT_MODEL"])
    baseline = bot_model.model_path()
    if not API_PY.exists():
        return baseline if baseline.exists() else None
    if not baseline.exists():
        log(f"no model at {baseline}; run `make train`")
        return None
    found = subprocess.run([str(API_PY), "-m", "api.registry", "serve-path", "--baseline",
                            str(baseline)], cwd=ROOT, env=env, capture_output=True, text=True)
    if found.returncode != 0:
        log(f"the model registry could not name a model to serve:\n{found.stderr.strip()}")
        return None
    model = Path(found.stdout.strip().splitlines()[-1])
    shown = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    log(f"serving the registry's active model: {shown}")
    return model


def main() -> int:
    env = dict(os.environ)
    rasa_port = env.setdefault("RASA_PORT", "5005")
    action_port = env.setdefault("ACTION_PORT", "5055")
    switchboard_port = env.setdefault("SWITCHBOARD_PORT", "8000")
    env.setdefault("APP_ENV", "local")  # the service alone defaults to production
    env.setdefault("RASA_TOKEN", secrets.token_urlsafe(24))
    (ROOT / "var").mkdir(exist_ok=True)
    env.update({
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "RASA_TRACKER_DB": env.get("RASA_TRACKER_DB", str(ROOT / "var" / "rasa-tracker.db")),
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}",
    })
    model = served_model(env)
    if model is None:
        return 1

    supervisor = Supervisor()
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGHUP, supervisor.stop)

    supervisor.start("action server", [str(BOT_BIN / "rasa"), "run", "actions",
                                       "--port", action_port, "--actions", "actions"],
                     action_server_env(env))
    supervisor.start("rasa server", [
        str(BOT_BIN / "rasa"), "run", "--enable-api", "--auth-token", env["RASA_TOKEN"],
        "--port", rasa_port, "--interface", "127.0.0.1", "--model", str(model),
        "--credentials", "credentials.yml", "--endpoints", "endpoints.yml"], bot_env(env))
    switchboard = (ROOT / "api" / "__main__.py").exists() and API_PY.exists()
    if switchboard:
        supervisor.start("switchboard", [str(API_PY), "-m", "api"], env)

    ready = wait_ready(f"http://127.0.0.1:{rasa_port}/status?token={env['RASA_TOKEN']}",
                       supervisor)
    if ready:
        log(f"bot ready: Rasa REST channel at http://127.0.0.1:{rasa_port}/webhooks/rest/webhook")
        if switchboard and wait_ready(f"http://127.0.0.1:{switchboard_port}/healthz", supervisor,
                                      timeout=300):
            log(f"open http://localhost:{switchboard_port}/ (fan chat), "
                f"http://localhost:{switchboard_port}/inbox (staff inbox), "
                f"http://localhost:{switchboard_port}/operator (operators: review and retrain)")
            if env["APP_ENV"] == "local":
                # Only the public default is printed: a password of one's own stays out of logs.
                password = ("'aurora-demo'" if env.get("DEMO_STAFF_PASSWORD", "aurora-demo")
                            == "aurora-demo" else "from DEMO_STAFF_PASSWORD")
                log(f"staff API: http://localhost:{switchboard_port}/docs — demo logins (local "
                    f"mode only) {', '.join(staff_handles())} with the password {password}")
        log("press Ctrl-C to stop")

    status = 0
    parent = os.getppid()
    while not supervisor.stopping:
        if os.getppid() != parent:
            # `make run` itself was killed (make does not pass SIGTERM on to its recipe):
            # an orphaned supervisor stops everything rather than leave servers behind.
            log("parent process is gone")
            break
        name = supervisor.exited()
        if name:
            log(f"{name} exited with status {supervisor.children[name].returncode}")
            status = 1
            supervisor.stop()
            break
        time.sleep(0.5)
    supervisor.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
