#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter (Rasa 3.6 runs on 3.10 only).
# Candidates are *run*, not just looked up: a pyenv shim named python3.10 can exist and fail.
set -u
candidates=("${PYTHON310:-}" python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10)
for dir in "$HOME"/.pyenv/versions/3.10.* /opt/python/3.10* /usr/local/python3.10*; do
  [ -x "$dir/bin/python" ] && candidates+=("$dir/bin/python")
done
for candidate in "${candidates[@]}"; do
  [ -n "$candidate" ] || continue
  if "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
cat >&2 <<'MSG'
No working Python 3.10 found; Rasa 3.6 needs one for the bot environment (.venv-bot).
Install it, for example:
  pyenv install 3.10           (then re-run make)
  apt-get install python3.10 python3.10-venv   (where your distribution has it)
or point PYTHON310 at an interpreter: make PYTHON310=/path/to/python3.10 ...
MSG
exit 1
