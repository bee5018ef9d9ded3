from __future__ import annotations

from pathlib import Path

from api.triage.evaluate import binary_scores
from api.triage.goemotions import read_tsv
from api.triage.text import SHORTCUTS, normalise, strip_accents
from api.triage.train import TrainConfig, best_threshold, stamp


def test_normalise_expands_shortcuts_and_keeps_offsets() -> None:
    raw = "Cant find my M8 pleeease"
    n = normalise(raw)
    assert n.text == "can't find my mate please"
    assert n.original(raw, 0, len("can't find my mate")) == "Cant find my M8"


def test_shortcuts_do_not_shadow_real_words() -> None:
    for word in ("ill", "id", "k", "us", "no", "se"):
        assert word not in SHORTCUTS


def test_strip_accents() -> None:
    assert strip_accents("están acosándome") == "estan acosandome"


def test_goemotions_reader(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("joy\nanger\nneutral\n")
    tsv = tmp_path / "x.tsv"
    tsv.write_text("so happy\t0\tid1\nso mad\t1,0\tid2\nmeh\t2\tid3\n")
    assert [e.negative for e in read_tsv(tsv)] == [False, True, False]


def test_scores_and_threshold() -> None:
    s = binary_scores([True, True, False, False], [True, False, True, False])
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    th, f1 = best_threshold([0.9, 0.8, 0.2, 0.1], [True, True, False, False])
    assert f1 == 1.0 and 0.2 < th <= 0.8


def test_stamp_changes_with_data_and_config(tmp_path: Path) -> None:
    f = tmp_path / "emotion_x.tsv"
    f.write_text("1\tbad\n")
    a = stamp([f], TrainConfig())
    assert a == stamp([f], TrainConfig())
    assert a != stamp([f], TrainConfig(epochs=9))
    f.write_text("0\tgood\n")
    assert a != stamp([f], TrainConfig())


def test_stacker_fits_a_separable_toy_set() -> None:
    from api.triage.stacker import fit

    xs = [[3.0, -0.8, 0.5, 0.0], [2.0, -0.5, 0.4, 0.1],
          [-3.0, 0.8, 0.0, 0.6], [-2.0, 0.4, 0.1, 0.5]]
    stacker = fit(xs, [True, True, False, False])
    assert stacker.score(xs[0]) > 0.5 > stacker.score(xs[2])


def test_training_is_deterministic_and_says_what_it_used(tmp_path: Path) -> None:
    """The same data gives the same model, file for file (a small GoEmotions-format slice of the
    data the repository carries, so it takes seconds)."""
    from api.triage.train import GOEMOTIONS_DIR, fan_files, train

    go = tmp_path / "goemotions"
    go.mkdir()
    for name, rows in (("train.tsv", 3000), ("dev.tsv", 600)):
        lines = (GOEMOTIONS_DIR / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (go / name).write_text("".join(lines[:rows]), encoding="utf-8")
    cfg = TrainConfig(architecture="bow", epochs=2)
    metas = [train(tmp_path / f"m{i}", fan=fan_files(), goemotions=go, cfg=cfg, quiet=True)
             for i in (1, 2)]
    assert metas[0] == metas[1] and metas[0]["stacker"] is not None
    assert any("goemotions/train.tsv" in d for d in metas[0]["data"])
    files = sorted(p.relative_to(tmp_path / "m1") for p in (tmp_path / "m1").rglob("*")
                   if p.is_file())
    assert files
    for name in files:
        assert (tmp_path / "m1" / name).read_bytes() == (tmp_path / "m2" / name).read_bytes()
