"""Start the real Rasa server and action server for a test, on free ports (standard library only).

    with start_bot_servers() as bot:
        httpx.post(f"{bot.rasa_url}/webhooks/rest/webhook", json={...})

Usable from either environment: it only starts `.venv-bot` processes. Raises RuntimeError with a
clear message when no model is trained for the current data (run `make train`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import bot_model  # noqa: E402

VENV_BOT = ROOT / ".venv-bot" / "bin"


@dataclass(frozen=True)
class BotServers:
    rasa_url: str
    token: str
    actions_url: str
    model: Path
    log_dir: Path
    rasa_pid: int
    actions_pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(url: str, timeout: float, process: subprocess.Popen, log: Path,
               ready=lambda body: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and ready(response.read()):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exit_cleanly_on_sigterm() -> None:
    """Python's default SIGTERM ends the process without running ``finally`` blocks, which
    would leave the servers running: turn it into SystemExit (main thread, default handler)."""
    import signal
    import threading

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextlib.contextmanager
def start_bot_servers(model: Path | None = None, frozen_now: str | None = None,
                      extra_env: dict[str, str] | None = None,
                      token: str | None = None) -> Iterator[BotServers]:
    """Rasa (``--enable-api`` with a token: ``token``, or a random one) and the action server,
    stopped on exit."""
    model = model or bot_model.model_path()
    if not model.exists():
        raise RuntimeError(f"no trained model at {model}: run `make train` first")
    _exit_cleanly_on_sigterm()
    rasa_port, actions_port = free_port(), free_port()
    token = token or secrets.token_urlsafe(16)
    log_dir = Path(tempfile.mkdtemp(prefix="bot-servers-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{actions_port}/webhook",
        "RASA_TRACKER_DB": str(log_dir / "tracker.db"),
        "RASA_TOKEN": token,  # the switchboard channel's model swap checks it
        **({"BOT_FROZEN_NOW": frozen_now} if frozen_now else {}),
        **(extra_env or {}),
    }
    actions_log, rasa_log = log_dir / "actions.log", log_dir / "rasa.log"
    processes: list[subprocess.Popen] = []
    try:
        with open(actions_log, "w") as out:
            processes.append(subprocess.Popen(
                [str(VENV_BOT / "rasa"), "run", "actions", "--port", str(actions_port),
                 "--actions", "actions"],
                cwd=ROOT, env={**env, "SANIC_HOST": "127.0.0.1"},  # not every interface
                stdout=out, stderr=subprocess.STDOUT))
        with open(rasa_log, "w") as out:
            processes.append(subprocess.Popen(
                [str(VENV_BOT / "rasa"), "run", "--enable-api", "--auth-token", token,
                 "--port", str(rasa_port), "--interface", "127.0.0.1",
                 "--model", str(model), "--credentials", "credentials.yml",
                 "--endpoints", "endpoints.yml"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        actions_url = f"http://127.0.0.1:{actions_port}"
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        wait_until(f"{actions_url}/health", 120, processes[0], actions_log)
        wait_until(f"{rasa_url}/status?token={token}", 240, processes[1], rasa_log,
                   ready=lambda body: bool(json.loads(body).get("model_file")))
        yield BotServers(rasa_url, token, actions_url, model, log_dir,
                         rasa_pid=processes[1].pid, actions_pid=processes[0].pid)
    finally:
        for process in reversed(processes):
            _stop(process)
