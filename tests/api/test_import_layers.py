"""The bot path's modules import in one direction: the snapshot types (api/snapshots.py) at the
bottom, the domain rules and shapes (api/handoff/service.py, api/relay/schemas.py) above them,
the units of work (api/flows.py) above those, and the async side (api/relay/relay.py,
api/handoff/manager.py, api/intake.py, the channels) on top.

handoff/ and relay/ used to take the snapshot types from api/flows.py, which imports handoff/
and relay/ in turn: an import cycle. These tests keep it from coming back.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
API = REPO_ROOT / "api"

# The modules of the cycle that was, and what sits right on top of them.
BOT_PATH = [
    "api.snapshots",
    "api.flows",
    "api.handoff.flows",
    "api.handoff.manager",
    "api.handoff.service",
    "api.relay.client",
    "api.relay.relay",
    "api.relay.schemas",
    "api.intake",
    "api.outbox.flows",
    "api.inbox.service",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every ``api`` module and the ``api`` modules it imports anywhere in its source (at the
    top, inside functions, under TYPE_CHECKING: a cycle through any of them is still one)."""
    modules = {module_name(p): p for p in API.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_no_import_cycle_through_the_bot_path():
    graph = import_graph()
    cycles = {name for name in BOT_PATH if name in reachable(graph, name)}
    assert not cycles, f"modules that import themselves through others: {sorted(cycles)}"


def test_snapshot_types_come_from_snapshots():
    graph = import_graph()
    below = reachable(graph, "api.snapshots")
    assert not {m for m in below if m.startswith(("api.flows", "api.handoff", "api.relay"))}
    for path in [*(API / "handoff").rglob("*.py"), *(API / "relay").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        taken = [a.name for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "api.flows"
                 for a in node.names]
        assert not taken, f"{path.relative_to(REPO_ROOT)} takes {taken} from api.flows"


@pytest.mark.parametrize("module", BOT_PATH)
def test_imports_alone(module):
    """Each module imports first in a fresh interpreter (a cycle shows up as a partly
    initialised module)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
