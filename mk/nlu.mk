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
# DIET capped at 20 epochs: 100 would take about 1.5 hours). About 80 minutes on 2 cores; each
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

# The same candidates on the bot's own data: each config's NLU pipeline trained on data/nlu
# (training cache off, so the seconds are from scratch), then `rasa test nlu` on the held-out
# files in English, Spanish and German (intent accuracy as `make test-nlu` reports it). About
# 10 minutes on 2 cores, most of it the two DIET pipelines. Models, reports and the configs as
# trained (copies: Rasa writes an assistant_id into a config that has none) in var/nlu-compare/.
NLU_COMPARE_CONFIGS ?= $(NLU_BENCH_CONFIGS)/diet_cv.yml $(NLU_BENCH_CONFIGS)/use_diet.yml \
  $(NLU_BENCH_CONFIGS)/bench.yml $(NLU_BENCH_CONFIGS)/use_lr.yml config.yml

.PHONY: bot-nlu-compare
bot-nlu-compare: bot-env
	@set -e; rm -rf var/nlu-compare; mkdir -p var/nlu-compare; \
	for config in $(NLU_COMPARE_CONFIGS); do \
	  name=$$(basename $$config .yml); started=$$(date +%s); \
	  cp $$config var/nlu-compare/$$name.config.yml; \
	  RASA_MAX_CACHE_SIZE=0 $(RASA) train nlu --config var/nlu-compare/$$name.config.yml --nlu data/nlu \
	    --out var/nlu-compare --fixed-model-name $$name --quiet > var/nlu-compare/$$name.log 2>&1; \
	  line="$$name: nlu_train_seconds=$$(( $$(date +%s) - started ))"; \
	  for lang in en es de; do \
	    file=tests/nlu/test_nlu$$([ $$lang = en ] || echo _$$lang).yml; \
	    [ -f $$file ] || continue; \
	    $(RASA) test nlu --model var/nlu-compare/$$name.tar.gz --nlu $$file \
	      --out var/nlu-compare/$$name-$$lang >> var/nlu-compare/$$name.log 2>&1; \
	    line="$$line $$lang=$$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["accuracy"], 3))' var/nlu-compare/$$name-$$lang/intent_report.json)"; \
	  done; echo "$$line"; \
	done
