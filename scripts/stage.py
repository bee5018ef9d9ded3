"""Run one stage of `make test`, print how long it took, and keep CI logs readable.

    python3 scripts/stage.py NAME [--log FILE] -- COMMAND ...

With --log, the command's output goes to FILE and is printed only if the stage fails (Rasa and
TensorFlow print screenfuls). Exits with the command's status.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    name = options[0]
    log = Path(options[options.index("--log") + 1]) if "--log" in options else None
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    if log is None:
        status = subprocess.call(command)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            status = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
        if status != 0:
            sys.stdout.write(log.read_text(errors="replace")[-20000:])
    elapsed = time.monotonic() - started
    verdict = "ok" if status == 0 else f"FAILED (exit {status})"
    print(f"<== {name}: {verdict} in {elapsed:.1f} s", flush=True)
    with open(Path("var") / "stage-times.txt", "a") as times:
        times.write(f"{name}\t{elapsed:.1f}\t{verdict}\n")
    return status


if __name__ == "__main__":
    Path("var").mkdir(exist_ok=True)
    sys.exit(main(sys.argv[1:]))
