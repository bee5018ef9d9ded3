"""A user's clone has no ../shared: the product must not reach outside the repository."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What runs in the product (benchmarks/ and tests may use DATASETS_DIR; the product may not).
PRODUCT = ("api", "actions", "bot", "scripts")


def test_product_code_never_reads_the_datasets_folder() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in PRODUCT
        for path in (ROOT / folder).rglob("*.py")
        if any(marker in path.read_text(encoding="utf-8")
               for marker in ("DATASETS_DIR", '"shared"', "shared/datasets"))
    ]
    assert offenders == []


def test_triage_training_data_travels_with_the_repository() -> None:
    goemotions = ROOT / "data" / "triage" / "goemotions"
    for name in ("train.tsv", "dev.tsv", "labels.txt", "LICENSE", "README.md"):
        assert (goemotions / name).is_file(), name
    assert not (goemotions / "test.tsv").exists()  # the test split is held back
