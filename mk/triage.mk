# Triage (api/triage/): the negative-emotion model, its tests, benchmark and evaluation.
# Included from the top Makefile, which defines VENV_API (.venv) and PYTHONPATH.
VENV_API ?= .venv
TRIAGE_PY := $(VENV_API)/bin/python
# GoEmotions travels with the repository (Apache-2.0): every clone trains and scores the same model.
GOEMOTIONS_DEV := data/triage/goemotions/dev.tsv

.PHONY: train-triage test-triage bench-triage eval-triage

# Trains models/triage/ only when the fan data, GoEmotions, the training code or its config
# changed (their hash is the stamp in models/triage/triage_meta.json). Deterministic: the same
# data gives the same model and the same figures.
train-triage: api-env
	@$(TRIAGE_PY) -m api.triage.train

# Pure tests of the trained model, the patterns and the rules.
test-triage: train-triage
	$(TRIAGE_PY) -m pytest tests/api/triage -q -p no:cacheprovider

bench-triage: train-triage
	$(TRIAGE_PY) -m api.triage.bench

# The GoEmotions evaluation line on dev (the threshold was chosen there; the test split is held
# back and measured from outside).
eval-triage: train-triage
	@$(TRIAGE_PY) -m api.triage.evaluate --goemotions-tsv $(GOEMOTIONS_DEV)
