# The NLU benchmark on public data (benchmarks/clinc150.py): intent accuracy and out-of-scope
# recall on CLINC150. Included from the top Makefile, which defines DATASETS_DIR and PYTHONPATH.
VENV_BOT ?= .venv-bot
NLU_BENCH_PY := $(VENV_BOT)/bin/python
DATASETS_DIR ?= $(abspath ../shared/datasets)
CLINC ?= $(DATASETS_DIR)/clinc150/clinc150_train_val.json
SPLIT ?= val
NLU_BENCH_CONFIGS := benchmarks/clinc150_configs
# The pipeline measured: config.yml's, the one the bot serves.
NLU_BENCH_CONFIG ?= config.yml
# Extra harness options, e.g. NLU_BENCH_ARGS="--diet-epochs 20" to cap DIET's epochs for a DIET
# pipeline that would not fit 30 minutes (none is needed for config.yml as committed).
NLU_BENCH_ARGS ?=
NLU_BENCH_RUN = TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false PYTHONPATH=$(CURDIR) \
  $(NLU_BENCH_PY) -m benchmarks.clinc150 --clinc "$(CLINC)" --split "$(SPLIT)"

.PHONY: bench-nlu bench-nlu-compare

# Trains config.yml's NLU pipeline on train + oos_train (its FallbackClassifier threshold tuned
# on a 20% slice of that data only) and scores SPLIT + oos_SPLIT. Model in models/bench/, figures
# in var/bench-nlu/; the last line is
# `clinc150 split=... in_scope_accuracy=... oos_recall=... train_seconds=...`.
bench-nlu: bot-env
	@$(NLU_BENCH_RUN) --config $(NLU_BENCH_CONFIG) --out var/bench-nlu $(NLU_BENCH_ARGS)

# The candidates side by side, same data and split, each with the tuned threshold: words only,
# words + char n-grams (the earlier benchmark pipeline), the sentence encoder alone, config.yml
# (the served pipeline: sentence encoder + words + char n-grams), then the DIET pipeline
# config.yml had before the sentence encoder, as written (its FallbackClassifier 0.55 / 0.1;
# DIET capped at 20 epochs: 100 would take about 1.5 hours). About 75 minutes on 2 cores; each
# run ends with its result line; JSON in var/bench-nlu/compare/.
bench-nlu-compare: bot-env
	@set -e; run() { $(NLU_BENCH_RUN) --out var/bench-nlu/compare "$$@"; }; \
	echo "== words + LogisticRegression (words_lr.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/words_lr.yml; \
	echo "== words + char n-grams + LogisticRegression (bench.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/bench.yml; \
	echo "== sentence encoder + LogisticRegression (use_lr.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/use_lr.yml; \
	echo "== config.yml: sentence encoder + words + char n-grams + LogisticRegression"; \
	  run --config config.yml; \
	echo "== the earlier config.yml (DIET) as written, DIET 20 epochs (diet_cv.yml)"; \
	  run --config $(NLU_BENCH_CONFIGS)/diet_cv.yml --diet-epochs 20 --as-configured
