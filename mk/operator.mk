# The operators' retraining loop from the command line (the console at /operator does the same).
# Included from the top Makefile (VENV_API, PYTHONPATH, `train`).
# On the local database of `make run`, so in local mode unless APP_ENV says otherwise.
OPERATOR_PY := APP_ENV=$${APP_ENV:-local} $(VENV_API)/bin/python

.PHONY: review-export evaluate models candidate

# The review queue as JSON Lines (personal data replaced by placeholders): var/review/queue.jsonl
review-export: api-env
	$(OPERATOR_PY) -m api.review export --status new --out var/review/queue.jsonl

# Score the model of the current data (`make train`) against the registry's active model on the
# held-out NLU file and the conversation tests, judge it with the activation gate, record it.
# Exit 1 when it fails the gate. Then: python -m api.registry activate <id>
evaluate: api-env train
	$(OPERATOR_PY) -m api.registry evaluate

# The registry: every model, its status and scores.
models: api-env
	@$(OPERATOR_PY) -m api.registry list

# What the console's "Train" does: validate, train a candidate (models/candidates/), evaluate.
candidate: api-env bot-env
	$(OPERATOR_PY) -m api.registry train

# What fans feel while a model is activated: bot turns before vs during `PUT /model` (real Rasa,
# same model re-archived; 127.0.0.1 only; about a minute; writes var/bench-activation.json).
.PHONY: bench-activation
bench-activation: api-env train
	$(OPERATOR_PY) -m benchmarks.activation
