# Fan-care desk. The two commands a newcomer needs: `make run` and `make test`.
# Everything is installed from nothing on first use and reused while still valid.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV_BOT := .venv-bot
VENV_API := .venv
RASA := $(VENV_BOT)/bin/rasa
PY_BOT := $(VENV_BOT)/bin/python
PY_API := $(VENV_API)/bin/python
STAGE := python3 scripts/stage.py
NLU_MIN_ACCURACY ?= 0.95
NLU_MIN_ACCURACY_DE ?= 0.95
DATASETS_DIR ?= $(abspath ../shared/datasets)

export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false
export DATASETS_DIR

# The switchboard's targets (api-env, npm-assets, chromium, services, test-api, ...) and
# triage's (train-triage, test-triage, bench-triage, eval-triage).
-include mk/api.mk
-include mk/triage.mk
# The operators' loop from the command line (review-export, evaluate, models, candidate) and the
# CLINC150 benchmark (bench-nlu, bench-nlu-compare).
-include mk/operator.mk
-include mk/nlu.mk
# Answers in the fan's language end to end (bench-language).
-include mk/language.mk
# Several switchboards behind HAProxy on PostgreSQL and Redis, with Rasa and actions (cluster).
-include mk/cluster.mk
# The cluster under load while its parts are killed (fault-test, fault-test-short).
-include mk/faults.mk

.PHONY: help run test setup bot-env train validate test-bot test-bot-e2e test-conversations test-nlu \
        crossval lint bench bench-bot clean

help:
	@echo "make run    start the whole system (installs and trains what is missing)"
	@echo "make test   set up what is missing and run every test"
	@echo "make cluster  several switchboards behind HAProxy on PostgreSQL and Redis"
	@echo "other targets: train validate crossval lint bench bench-nlu evaluate models"
	@echo "               review-export candidate clean (see README.md)"

# --- environments ---------------------------------------------------------------------------

# The bot environment: Python 3.10 (found by running candidates), rasa 3.6 from the lock.
$(VENV_BOT)/.installed: requirements/bot.lock
	@py=$$(scripts/find-python310.sh) || exit 1; \
	if [ ! -x $(PY_BOT) ]; then echo "creating $(VENV_BOT) with $$py"; $$py -m venv $(VENV_BOT); fi
	$(PY_BOT) -m pip install --quiet --upgrade pip
	$(PY_BOT) -m pip install --quiet -r requirements/bot.lock
	@touch $@

bot-env: $(VENV_BOT)/.installed

setup: bot-env $(if $(wildcard mk/api.mk),api-env npm-assets)

# --- the bot ----------------------------------------------------------------------------------

# Trains only when config.yml, domain.yml or the Rasa data changed (scripts/bot_model.py).
train: bot-env
	@$(STAGE) "train the bot" -- python3 scripts/bot_model.py ensure --rasa $(RASA)

validate: bot-env
	@$(STAGE) "rasa data validate" --log var/logs/validate.log -- \
	  $(RASA) data validate --fail-on-warnings --data $(wildcard data/nlu data/rules data/stories)

run: setup train $(if $(wildcard mk/triage.mk),train-triage)
	@python3 scripts/run.py

# --- tests ------------------------------------------------------------------------------------

test: setup
	@rm -f var/stage-times.txt
	@$(MAKE) --no-print-directory lint validate test-bot train test-conversations test-nlu \
	  test-bot-e2e $(if $(wildcard mk/triage.mk),train-triage) \
	  $(if $(wildcard mk/api.mk),test-api)
	@echo "== stage times =="; column -t -s $$'\t' var/stage-times.txt

lint: bot-env
	@$(STAGE) "lint (ruff)" -- $(VENV_BOT)/bin/ruff check actions bot benchmarks scripts tests $(wildcard api)

test-bot: bot-env
	@$(STAGE) "bot unit tests" -- $(PY_BOT) -m pytest tests/bot -q -p no:cacheprovider -m "not rasa"

# The real Rasa and action servers with the trained model, over HTTP.
test-bot-e2e: train
	@$(STAGE) "bot end-to-end tests" -- $(PY_BOT) -m pytest tests/bot -q -p no:cacheprovider -m rasa

# Conversation tests against the model trained for the current data.
test-conversations: train
	@rm -rf var/results/conversations
	@$(STAGE) "conversation tests" --log var/logs/conversations.log -- \
	  $(RASA) test core --model $$(python3 scripts/bot_model.py path) \
	  --stories tests/conversations --e2e --fail-on-prediction-errors \
	  --out var/results/conversations

# Held-out NLU test files (written apart from the training data, never trained on), one per
# language, each gated at its own minimum intent accuracy (English and Spanish NLU_MIN_ACCURACY;
# German, the third language, covers its ten commonest questions: NLU_MIN_ACCURACY_DE).
test-nlu: train
	@rm -rf var/results/nlu var/results/nlu-es var/results/nlu-de
	@$(STAGE) "held-out NLU test (en)" --log var/logs/nlu.log -- \
	  $(RASA) test nlu --model $$(python3 scripts/bot_model.py path) \
	  --nlu tests/nlu/test_nlu.yml --out var/results/nlu
	@python3 scripts/nlu_report.py var/results/nlu/intent_report.json \
	  --min-accuracy $(NLU_MIN_ACCURACY)
	@$(STAGE) "held-out NLU test (es)" --log var/logs/nlu-es.log -- \
	  $(RASA) test nlu --model $$(python3 scripts/bot_model.py path) \
	  --nlu tests/nlu/test_nlu_es.yml --out var/results/nlu-es
	@python3 scripts/nlu_report.py var/results/nlu-es/intent_report.json \
	  --min-accuracy $(NLU_MIN_ACCURACY)
	@$(STAGE) "held-out NLU test (de)" --log var/logs/nlu-de.log -- \
	  $(RASA) test nlu --model $$(python3 scripts/bot_model.py path) \
	  --nlu tests/nlu/test_nlu_de.yml --out var/results/nlu-de
	@python3 scripts/nlu_report.py var/results/nlu-de/intent_report.json \
	  --min-accuracy $(NLU_MIN_ACCURACY_DE)

# 5-fold cross-validation on the training data (slow; not part of `make test`).
crossval: bot-env
	$(RASA) test nlu --nlu data/nlu --config config.yml --cross-validation --folds 5 \
	  --out var/results/crossval
	python3 scripts/nlu_report.py var/results/crossval/intent_report.json

# --- benchmarks -------------------------------------------------------------------------------

bench: bench-bot $(if $(wildcard mk/api.mk),bench-switchboard)

bench-bot: train
	$(PY_BOT) -m benchmarks.bot --out var/bench-bot.json

clean:
	rm -rf var/results var/logs var/stage-times.txt
