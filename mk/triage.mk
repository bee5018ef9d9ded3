# Triage (api/triage/): the negative-emotion model, its tests, benchmark and evaluation.
# Included from the top Makefile, which defines VENV_API (.venv), DATASETS_DIR and PYTHONPATH.
VENV_API ?= .venv
TRIAGE_PY := $(VENV_API)/bin/python
DATASETS_DIR ?= $(abspath ../shared/datasets)
GOEMOTIONS_DEV := $(DATASETS_DIR)/goemotions/dev.tsv

.PHONY: train-triage test-triage bench-triage eval-triage

# Trains models/triage/ only when the fan data, GoEmotions, the training code or its config
# changed (their hash is the stamp in models/triage/triage_meta.json); says which data it used.
train-triage:
	@$(TRIAGE_PY) -m api.triage.train

# Pure tests; they use models/triage/ when present, else train a small model from our own data.
test-triage:
	$(TRIAGE_PY) -m pytest tests/api/triage -q -p no:cacheprovider

bench-triage: train-triage
	$(TRIAGE_PY) -m api.triage.bench

eval-triage: train-triage
	@if [ -f "$(GOEMOTIONS_DEV)" ]; then \
	  $(TRIAGE_PY) -m api.triage.evaluate --goemotions-tsv "$(GOEMOTIONS_DEV)"; \
	else \
	  echo "GoEmotions dev not found at $(GOEMOTIONS_DEV): nothing to evaluate"; \
	fi
