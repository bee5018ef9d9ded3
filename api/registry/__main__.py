"""The model registry from the command line (automation, and ``make run`` / ``make evaluate``).

    python -m api.registry list
    python -m api.registry serve-path --baseline models/bot-<hash>.tar.gz   # what make run serves
    python -m api.registry evaluate [--model PATH]   # score against the active model, judge
    python -m api.registry train                     # validate, train a candidate, evaluate
    python -m api.registry activate ID [--no-swap]   # gate-checked; swaps the running Rasa
    python -m api.registry rollback [--to ID] [--no-swap]

Every Rasa process of RASA_URLS (default: RASA_URL) loads the model, reached with RASA_TOKEN
(as the switchboard does); ``--no-swap`` only records the choice, for when the bot is not
running (``make run`` serves the registry's active model when it starts).
Exit status: 0 done, 1 refused or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import httpx

from api.cluster.replica import Replica
from api.db import Database
from api.main import open_database
from api.registry import activation
from api.registry import service as registry
from api.registry.activation import ModelServing
from api.relay.client import RasaClient
from api.settings import Settings, get_settings
from api.training import service as jobs
from api.training.runner import TrainingRunner
from scripts import bot_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.registry",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every model, newest first")
    serve = sub.add_parser("serve-path", help="print the model to serve (first run: baseline)")
    serve.add_argument("--baseline", type=Path, required=True)
    evaluate = sub.add_parser("evaluate", help="score a model against the active one")
    evaluate.add_argument("--model", type=Path, default=None,
                          help="default: the model of the current data (make train)")
    sub.add_parser("train", help="validate, train a candidate and evaluate it")
    act = sub.add_parser("activate", help="serve a model that passed the gate")
    act.add_argument("model_id", type=int)
    act.add_argument("--no-swap", action="store_true")
    back = sub.add_parser("rollback", help="serve the model that was active before")
    back.add_argument("--to", type=int, default=None, dest="to_model_id")
    back.add_argument("--no-swap", action="store_true")
    args = parser.parse_args(argv)

    settings = get_settings()
    db = open_database(settings)
    try:
        return asyncio.run(_run(args, settings, db))
    except (registry.NotFound, registry.NotAllowed, activation.ActivationFailed,
            activation.Busy) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


async def _run(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    if args.command == "list":
        for row in await db.run(registry.models):
            metrics = row["metrics"] or {}
            score = (f"acc={metrics['accuracy']:.3f} macroF1={metrics['macro_f1']:.3f}"
                     if metrics else "not evaluated")
            print(f"{row['id']:>4}  {row['status']:<9} {row['name']:<45} {score}  "
                  f"{row['source']} by {row['created_by']}"
                  + (f", activated by {row['activated_by']}" if row["activated_by"] else ""))
        return 0
    if args.command == "serve-path":
        model = await db.run(registry.ensure_serving_flow, baseline=args.baseline.resolve(),
                             by="make run")
        path = registry.file_of(model)
        if not path.is_file():
            raise registry.NotAllowed(
                f"the registry's active model {model.name} is missing ({path}); "
                "python -m api.registry rollback, or activate another model")
        print(path)
        return 0
    if args.command in ("evaluate", "train"):
        # A replica of its own while the job runs: the switchboards leave a live one's job alone.
        replica = Replica(db=db, settings=settings)
        runner = TrainingRunner(db, settings, replica)
        if args.command == "train":
            await replica.start()
            try:
                job_id = await runner.submit(by="cli")
                await runner.wait()
            finally:
                await replica.stop()
            job = await db.run(jobs.get, job_id=job_id)
            print(json.dumps({k: job[k] for k in ("id", "status", "error", "model_id")},
                             default=str))
            if job["status"] != "succeeded":
                print(job["log_tail"] or "", file=sys.stderr)
                return 1
            model_id = job["model_id"]
        else:
            path = (args.model or bot_model.model_path(settings.bot_project_dir)).resolve()
            model_id = await db.run(_register, path=path)
            await runner.evaluate(model_id, by="cli")
        row = await db.run(lambda s: registry.row(registry.get(s, model_id)))
        _print_verdict(row)
        return 0 if row["gate"]["passed"] else 1
    # A replica of its own while it loads: the cluster's lease on the Rasa processes is held
    # by a live member only.
    replica = Replica(db=db, settings=settings)
    await replica.start()
    try:
        async with httpx.AsyncClient() as http:
            processes = [] if args.no_swap else [
                RasaClient(base_url=url, token=settings.rasa_token,
                           channel_path=settings.rasa_channel_path, http=http,
                           timeout_s=settings.rasa_timeout_s) for url in settings.rasa_urls]
            serving = ModelServing(db=db, processes=processes, member=replica.member,
                                   load_timeout_s=settings.rasa_model_load_timeout_s)
            rollback = args.command == "rollback"
            row = await serving.activate(
                model_id=args.to_model_id if rollback else args.model_id, by="cli",
                rollback=rollback)
    finally:
        await replica.stop()
    print(f"active: {row['id']} {row['name']}" + (" (recorded only)" if args.no_swap else ""))
    for process in row["processes"] if processes else []:
        print(f"  {process['url']}: " + ("serves it" if process["serves_active"]
                                          else process["error"] or "not confirmed"))
    return 0


def _register(session, *, path: Path) -> int:
    model = registry.register(session, path=path, source="cli", by="cli",
                              data_hash=path.name.removesuffix(".tar.gz").removeprefix("bot-"))
    session.commit()
    return model.id


def _print_verdict(row: dict) -> None:
    metrics = row["metrics"] or {}
    active = metrics.get("active") or {}
    print(f"model {row['id']} {row['name']}: {row['status']}")
    for key in ("accuracy", "macro_f1", "oos_caught"):
        was = active.get(key)
        now = metrics.get(key)
        print(f"  {key:<11} {_fmt(now)}  (active: {_fmt(was)})")
    conv = metrics.get("conversations") or {}
    if conv:
        print(f"  conversation tests failed: {conv.get('failed')} of {conv.get('stories')}")
    gate = row["gate"] or {}
    print("  gate: " + ("passed" if gate.get("passed") else "FAILED"))
    for reason in gate.get("reasons") or []:
        print(f"   - {reason}")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
