# Answers in the fan's language, end to end (benchmarks/answer_language.py): the real Rasa and
# action servers with the model of the current data, the switchboard on 127.0.0.1 (fresh SQLite,
# the trained triage model, Messenger against a local fake Graph API), every message of the
# Spanish and German held-out NLU files as a new fan's first message over REST and over
# Messenger. Reports the share answered in the fan's language and the share whose decided language
# was right, per channel; the last line is
# `language es_answered_in_es=... es_detected=... de_answered_in_de=... de_detected=...`.
# Details in var/bench-language.json. A few minutes; bounded (--max-minutes 30); stops by itself.
# Included from the top Makefile (VENV_API, PYTHONPATH, `train`, `api-env`).
VENV_API ?= .venv
LANGUAGE_BENCH_PY := $(VENV_API)/bin/python
# Extra options, e.g. LANGUAGE_BENCH_ARGS="--show-misses" or "--limit 20 --channels rest".
LANGUAGE_BENCH_ARGS ?=

.PHONY: bench-language

bench-language: api-env train $(if $(wildcard mk/triage.mk),train-triage)
	$(LANGUAGE_BENCH_PY) -m benchmarks.answer_language $(LANGUAGE_BENCH_ARGS)
