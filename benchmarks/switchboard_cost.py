"""The switchboard's own cost on a fan's REST bot turn, against an instant fake Rasa:
``python -m benchmarks.switchboard_cost`` (switchboard environment; ``make
bench-switchboard-cost``; 127.0.0.1 only, stops by itself, about a minute).

The switchboard runs as it is deployed (``python -m api`` under uvicorn, its own process, a fresh
SQLite database or ``--database-url``) against the test suite's fake Rasa (tests/api/fakes.py),
which answers at once. One fan at a time sends REST conversations of ``--turns`` messages; each
message goes, interleaved, to the fake Rasa's REST channel directly and through the switchboard,
so machine load hits both alike. Timed: turns 2..N of each conversation (the first one opens the
conversation). The switchboard's own cost is the difference of the two at p50; its CPU time per
turn is read from /proc.

``--baseline-root DIR``: a second switchboard from another checkout of the project (e.g. ``git
archive <commit> | tar -x -C DIR``, with models/ linked), on its own fresh database, timed in
the same interleaved rounds: before/after figures that machine load cannot tell apart.

``--real-rasa``: the same against the real Rasa and action servers (trained model; the issue's
interleaved measurement, turns 2..N, one fan at a time).

``--triage off`` leaves triage out (TRIAGE_MODEL_DIR pointed at an empty folder: messages go to
the bot untriaged); the default is the product as built (models/triage, `make train-triage`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["hello", "what time do you open?", "how much are the tickets?",
             "is there a dress code?", "where can I leave my coat?", "can I bring a bag?",
             "is there parking?", "who is playing on friday?", "do you have lockers?", "thanks!"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_switchboard(*, port: int, database_url: str, rasa_url: str, token: str,
                      actions_url: str, triage_dir: str | None, workdir: Path,
                      root: Path = ROOT, name: str = "switchboard") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(root), "APP_ENV": "local",
           "SWITCHBOARD_PORT": str(port),
           "DATABASE_URL": database_url, "RASA_URL": rasa_url, "RASA_TOKEN": token,
           "ACTION_SERVER_URL": actions_url, "LOG_LEVEL": "warning"}
    if triage_dir is not None:
        env["TRIAGE_MODEL_DIR"] = triage_dir
    log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "api"], cwd=root, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen, *, triage: bool, workdir: Path,
               name: str = "switchboard", timeout: float = 180.0) -> None:
    """Until the switchboard answers (with triage loaded, unless it is left out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited:\n"
                             + (workdir / f"{name}.log").read_text()[-3000:])
        try:
            r = httpx.get(url + "/healthz", timeout=2)
            checks = r.json().get("checks", {})
            if r.status_code == 200 or (not triage and all(
                    c.get("ok") for name, c in checks.items() if name != "triage")
                    and checks.get("triage", {}).get("error")):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready within {timeout:.0f} s")


def run(args) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.api.fakes import FakeActionServer, FakeRasa

    with contextlib.ExitStack() as stack:
        if args.real_rasa:
            from tests.support.rasa_servers import start_bot_servers

            bot = stack.enter_context(start_bot_servers())
            rasa_url, token, actions_url = bot.rasa_url, bot.token, bot.actions_url
        else:
            rasa = FakeRasa().start()
            rasa.delay = args.rasa_ms / 1000
            stack.callback(rasa.stop)
            actions = FakeActionServer().start()
            stack.callback(actions.stop)
            rasa_url, token = rasa.url, FakeRasa.TOKEN
            actions_url = actions.url + "/webhook"
        return _run(args, rasa_url, token, actions_url)


def _run(args, rasa_url: str, token: str, actions_url: str) -> dict:
    from api.main import migrate
    from benchmarks.common import free_port

    results: dict = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                     "triage": args.triage,
                     "rasa": "real (tests/support/rasa_servers.py)" if args.real_rasa
                     else f"fake, {args.rasa_ms:.0f} ms"}
    roots = {"switchboard": ROOT}
    if args.baseline_root:
        roots["baseline"] = Path(args.baseline_root).resolve()
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        targets = [("direct", rasa_url)]
        try:
            for i, (name, root) in enumerate(roots.items()):
                database_url = (args.database_url if name == "switchboard" and args.database_url
                                else f"sqlite:///{workdir / name}.db")
                if name == "switchboard":
                    migrate(database_url)
                else:  # its own schema: the baseline's migrations
                    subprocess.run([sys.executable, "-c", "import sys; from api.main import "
                                    "migrate; migrate(sys.argv[1])", database_url],
                                   cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                                   check=True)
                port = args.port + i if args.port else free_port()
                procs[name] = start_switchboard(
                    port=port, database_url=database_url, rasa_url=rasa_url,
                    token=token, actions_url=actions_url,
                    triage_dir=str(workdir / "no-triage") if args.triage == "off" else None,
                    workdir=workdir, root=root, name=name)
                targets.append((name, f"http://127.0.0.1:{port}"))
            for name, url in targets[1:]:
                wait_ready(url, procs[name], triage=args.triage != "off", workdir=workdir,
                           name=name)
            lat: dict[str, list[float]] = {name: [] for name, _ in targets}
            cpu = dict.fromkeys(procs, 0.0)
            with httpx.Client(timeout=30) as http:
                for c in range(args.warmup + args.conversations):
                    measured = c >= args.warmup
                    for k in range(args.turns):
                        text = QUESTIONS[k % len(QUESTIONS)]
                        # rotate who goes first, so none always runs on a warmer cache
                        shift = k % len(targets)
                        for name, base in targets[shift:] + targets[:shift]:
                            body = {"sender": f"cost-{name}-{c}", "message": text}
                            proc = procs.get(name)
                            cpu0 = cpu_s(proc.pid) if proc else 0.0
                            t0 = time.perf_counter()
                            r = http.post(base + "/webhooks/rest/webhook", json=body)
                            took = time.perf_counter() - t0
                            r.raise_for_status()
                            assert r.json(), r.text
                            if not measured or k == 0:
                                continue
                            lat[name].append(took * 1000)
                            if proc:
                                cpu[name] += cpu_s(proc.pid) - cpu0
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)
    direct = lat["direct"]
    results["direct"] = {"p50_ms": statistics.median(direct), "p99_ms": pct(direct, 0.99)}
    for name in procs:
        values = lat[name]
        results[name] = {
            "turns": len(values), "p50_ms": statistics.median(values),
            "p99_ms": pct(values, 0.99),
            "added_p50_ms": statistics.median(values) - statistics.median(direct),
            "added_p99_ms": pct(values, 0.99) - pct(direct, 0.99),
            "cpu_ms_per_turn": 1000 * cpu[name] / max(1, len(values)),
        }
    results["loadavg_after"] = os.getloadavg()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=60,
                        help="measured conversations (turns 2..N of each are timed)")
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    parser.add_argument("--warmup", type=int, default=3, help="conversations not timed")
    parser.add_argument("--rasa-ms", type=float, default=0.0,
                        help="how long the fake Rasa takes per turn (0: instant)")
    parser.add_argument("--real-rasa", action="store_true",
                        help="the real Rasa and action servers (trained model) instead")
    parser.add_argument("--triage", choices=("as-built", "off"), default="as-built")
    parser.add_argument("--database-url", default=None,
                        help="a migrated-or-empty database (default: fresh SQLite)")
    parser.add_argument("--port", type=int, default=0,
                        help="the switchboard's port, the baseline's the next (0: free ones)")
    parser.add_argument("--baseline-root", default=None,
                        help="another checkout to time alongside (before/after)")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-switchboard-cost.json"))
    args = parser.parse_args()
    r = run(args)
    d = r["direct"]
    print(f"REST turns 2..{args.turns}, one fan at a time (triage {r['triage']}, Rasa "
          f"{r['rasa']}; load {r['loadavg_before'][0]:.2f} -> "
          f"{r['loadavg_after'][0]:.2f} on {r['cpus']} CPUs)")
    print(f"direct to Rasa's REST channel: p50 {d['p50_ms']:.1f} / p99 {d['p99_ms']:.1f} ms")
    for name in ("baseline", "switchboard"):
        if name in r:
            s = r[name]
            print(f"{name}: p50 {s['p50_ms']:.1f} / p99 {s['p99_ms']:.1f} ms; added p50 "
                  f"{s['added_p50_ms']:+.1f} ms, p99 {s['added_p99_ms']:+.1f} ms; CPU "
                  f"{s['cpu_ms_per_turn']:.1f} ms/turn ({s['turns']} turns)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
