"""Operators' annotations (api/review/training_data.py) are valid Rasa data: read back by
Rasa's own YAML reader, and `rasa data validate --fail-on-warnings` passes on the project
with them. Works on a temporary copy, never on the tracked files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from rasa.shared.core.domain import Domain
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from api.review import training_data

ROOT = Path(__file__).resolve().parents[2]
RASA = ROOT / ".venv-bot" / "bin" / "rasa"


def project_copy(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    target.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "data", target / "data",
                    ignore=shutil.ignore_patterns("reviewed.yml", "*.reviewed.yml"))
    return target


def test_annotations_round_trip_through_rasa_and_validate(tmp_path):
    project = project_copy(tmp_path)
    facts = {"venue_name"}
    training_data.add_intent(project, name="lineup_compliment",
                             answer_en="Glad you like it — see you at {venue_name}!",
                             answer_es=None, fact_names=facts)
    for number, text in enumerate(["this lineup is sick, cant wait", "what a [lineup] 🔥"], 1):
        training_data.add_example(project, intent="lineup_compliment", text=text,
                                  metadata={"review_item": number, "added_by": "sam"})
    training_data.add_example(project, intent="refunds", text="money back for <order number>?",
                              metadata={"review_item": 3, "added_by": "sam"})

    nlu = RasaYAMLReader().read(project / "data/nlu/reviewed.yml")
    by_text = {m.get("text"): m for m in nlu.intent_examples}
    assert set(by_text) == {"this lineup is sick, cant wait", "what a (lineup) 🔥",
                            "money back for <order number>?"}
    assert by_text["this lineup is sick, cant wait"].get("intent") == "lineup_compliment"
    assert by_text["what a (lineup) 🔥"].get("entities") in (None, [])  # no annotation syntax
    assert by_text["money back for <order number>?"].get("metadata")["example"] == {
        "review_item": 3, "added_by": "sam"}
    domain = Domain.load(project / "domain.yml")
    assert "lineup_compliment" in domain.intents
    # Hand-written parts of the domain are untouched (comments included).
    original = (ROOT / "domain.yml").read_text()
    assert (project / "domain.yml").read_text().replace("  - lineup_compliment\n", "") == original

    result = subprocess.run(
        [str(RASA), "data", "validate", "--fail-on-warnings", "--domain", "domain.yml",
         "--data", "data/nlu", "data/rules"], cwd=project, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2",
             "RASA_TELEMETRY_ENABLED": "false"}, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
