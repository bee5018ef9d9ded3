# The NLU benchmark on public data (benchmarks/clinc150.py): intent accuracy and out-of-scope
# recall on CLINC150. Included from the top Makefile, which defines DATASETS_DIR and PYTHONPATH.
VENV_BOT ?= .venv-bot
NLU_BENCH_PY := $(VENV_BOT)/bin/python
DATASETS_DIR ?= $(abspath ../shared/datasets)
CLINC ?= $(DATASETS_DIR)/clinc150/clinc150_train_val.json
SPLIT ?= val
NLU_BENCH_CONFIGS := benchmarks/clinc150_configs

.PHONY: bench-nlu bench-nlu-compare

# Trains on train + oos_train (threshold from a 20% slice of that data only) and
# scores SPLIT + oos_SPLIT. Model in models/bench/, figures in var/bench-nlu/; the last line is
# `clinc150 split=... in_scope_accuracy=... oos_recall=... train_seconds=...`.
bench-nlu: bot-env
	@TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false PYTHONPATH=$(CURDIR) \
	  $(NLU_BENCH_PY) -m benchmarks.clinc150 --clinc "$(CLINC)" --split "$(SPLIT)" \
	  --config $(NLU_BENCH_CONFIGS)/bench.yml --out var/bench-nlu

# What the pipeline choices gain, same data and split: a words-only baseline and the benchmark
# config (both with the tuned threshold), then config.yml's own pipeline as written (its
# FallbackClassifier 0.55 / 0.1 untouched; DIET capped at 20 epochs: 100 would take over an hour).
# Takes about 40 minutes on 2 cores; each run ends with its result line; JSON in
# var/bench-nlu/compare/.
bench-nlu-compare: bot-env
	@set -e; run() { TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false PYTHONPATH=$(CURDIR) \
	  $(NLU_BENCH_PY) -m benchmarks.clinc150 --clinc "$(CLINC)" --split "$(SPLIT)" \
	  --out var/bench-nlu/compare "$$@"; }; \
	echo "== words + LogisticRegression (words_lr.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/words_lr.yml; \
	echo "== words + char n-grams + LogisticRegression (bench.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/bench.yml; \
	echo "== config.yml as written, DIET 20 epochs"; \
	  run --config config.yml --diet-epochs 20 --as-configured
