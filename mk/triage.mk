# Triage (api/triage/): the negative-emotion model, its tests, benchmark and evaluation.
# Included from the top Makefile, which defines VENV_API (.venv) and PYTHONPATH.
VENV_API ?= .venv
TRIAGE_PY := $(VENV_API)/bin/python
# GoEmotions travels with the repository (Apache-2.0): every clone trains and scores the same model.
GOEMOTIONS_DEV := data/triage/goemotions/dev.tsv

.PHONY: train-triage test-triage bench-triage eval-triage bench-triage-fresh bench-triage-turn

# Trains models/triage/ (negative emotion) and models/triage-semantic/ (the semantic layer) only
# when their data, training code or config changed (the stamps in their meta files).
# Deterministic: the same data gives the same models and the same figures.
train-triage: api-env
	@$(STAGE) "train triage (emotion)" -- $(TRIAGE_PY) -m api.triage.train
	@$(STAGE) "train triage (semantic)" -- $(TRIAGE_PY) -m api.triage.semantic_train

# Pure tests of the trained model, the patterns and the rules.
test-triage: train-triage
	$(TRIAGE_PY) -m pytest tests/api/triage -q -p no:cacheprovider

bench-triage: train-triage
	$(TRIAGE_PY) -m api.triage.bench

# The GoEmotions evaluation line on dev (the threshold was chosen there; the test split is held
# back and measured from outside).
eval-triage: train-triage
	@$(TRIAGE_PY) -m api.triage.evaluate --goemotions-tsv $(GOEMOTIONS_DEV)

# Triage on the fresh sets (tests/triage/fresh/), on ordinary traffic (held-out NLU files,
# out-of-scope set, CLINC150 in-scope texts when DATASETS_DIR has them) and its cost per message.
bench-triage-fresh: train-triage
	$(TRIAGE_PY) -m benchmarks.triage_fresh --show-misses

# What the semantic layer costs a fan's bot turn: REST turns against a fake Rasa answering in
# 60 ms, with the layer read while Rasa answers (as built), before Rasa, and without it
# (interleaved; in-process; 127.0.0.1 only; about a minute).
bench-triage-turn: train-triage
	$(TRIAGE_PY) -m benchmarks.triage_turn
