"""Which Rasa model belongs to the current training data, and train it when missing.

A model is named after a hash of what it is trained from (config.yml, domain.yml and the Rasa
training files under data/), so `make run` and `make test` retrain only when that changes.
Facts (data/venue.yml) and answer texts (data/answers.yml) are read by the action server at run
time and are deliberately not part of the hash: editing them never needs a retrain.

    python scripts/bot_model.py hash | path | ensure [--rasa .venv-bot/bin/rasa]

Plain standard library, so either environment (or the system python) can run it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Rasa's training data. Everything else under data/ (venue.yml, answers.yml, staff.yml, the
# triage data) is read by other processes at run time and is never passed to `rasa train`.
RASA_DATA_DIRS = ("nlu", "rules", "stories")


# What a training or evaluation subprocess keeps of its parent's environment: enough to run
# (paths, locale, temp dirs, thread and TensorFlow knobs), none of the switchboard's secrets.
TRAINING_ENV_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
                                "TMPDIR", "TERM", "SQLALCHEMY_SILENCE_UBER_WARNING", "TQDM_DISABLE",
                                "LOG_LEVEL", "LOG_LEVEL_LIBRARIES", "RASA_TELEMETRY_ENABLED"})
TRAINING_ENV_PREFIXES = ("LC_", "TF_", "TFHUB_", "HF_", "CUDA_", "OMP_", "MKL_", "OPENBLAS_",
                         "XDG_")
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL")


def training_env(venv: Path, environ: dict[str, str] | None = None,
                 project: Path = ROOT) -> dict[str, str]:
    """The environment for `rasa train` / evaluation in ``venv``: an allow-list of the parent's
    (``os.environ``) variables, never one whose name says it is secret, plus what Rasa needs."""
    environ = os.environ if environ is None else environ
    kept = {name: value for name, value in environ.items()
            if (name in TRAINING_ENV_NAMES or name.startswith(TRAINING_ENV_PREFIXES))
            and not any(word in name.upper() for word in _SECRET_WORDS)}
    bin_dir = str(Path(venv) / "bin")
    return {**kept,
            "PATH": os.pathsep.join(p for p in (bin_dir, kept.get("PATH", os.defpath)) if p),
            "VIRTUAL_ENV": str(venv), "PYTHONPATH": str(project), "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false"}


def rasa_data_dirs(root: Path = ROOT) -> list[Path]:
    return [root / "data" / name for name in RASA_DATA_DIRS if (root / "data" / name).is_dir()]


def training_files(root: Path = ROOT) -> list[Path]:
    files = [root / "config.yml", root / "domain.yml"]
    files += sorted(path for folder in rasa_data_dirs(root) for path in folder.rglob("*.yml"))
    return files


def data_hash(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in training_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(root: Path = ROOT, models_dir: Path | None = None) -> Path:
    return (models_dir or root / "models") / f"bot-{data_hash(root)}.tar.gz"


def ensure(rasa: str, models_dir: Path | None = None, quiet: bool = True) -> Path:
    """Train the model for the current data unless it is already there."""
    target = model_path(models_dir=models_dir)
    if target.exists():
        print(f"model up to date: {target.relative_to(ROOT)}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    data = [str(path.relative_to(ROOT)) for path in rasa_data_dirs()]
    command = [rasa, "train", "--config", "config.yml", "--domain", "domain.yml",
               "--data", *data, "--out", str(target.parent),
               "--fixed-model-name", target.name.removesuffix(".tar.gz")]
    if quiet:
        command.append("--quiet")
    started = time.monotonic()
    print(f"training {target.relative_to(ROOT)} ...", flush=True)
    env = training_env(Path(rasa).absolute().parent.parent)
    log_path = ROOT / "var" / "train.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0 or not target.exists():
        sys.stdout.write(log_path.read_text()[-5000:])
        raise SystemExit(f"training failed (log: {log_path})")
    print(f"trained {target.relative_to(ROOT)} in {time.monotonic() - started:.0f} s")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["hash", "path", "ensure"])
    parser.add_argument("--rasa", default=str(ROOT / ".venv-bot" / "bin" / "rasa"))
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "hash":
        print(data_hash())
    elif args.command == "path":
        print(model_path(models_dir=args.models_dir))
    else:
        ensure(args.rasa, args.models_dir)


if __name__ == "__main__":
    main()
