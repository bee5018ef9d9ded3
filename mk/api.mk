# The switchboard (api/): environment, assets, services, tests, migrations, benchmark.
# Included from the top Makefile, which defines VENV_API (.venv) and VENV_BOT (.venv-bot).
VENV_API ?= .venv
VENV_BOT ?= .venv-bot
API_PY := $(VENV_API)/bin/python
API_STAMP := $(VENV_API)/.api-lock.stamp
NPM_STAMP := node_modules/.package-lock.stamp
PG_READY := pg_isready -q -h 127.0.0.1 -p 5432
REDIS_READY := redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1
API_PYTEST := $(API_PY) -m pytest tests/api -p no:cacheprovider

.PHONY: api-env npm-assets chromium services test-api test-api-sqlite test-api-postgres \
	db-upgrade bench-switchboard bench-switchboard-cost bench-handoff bench-inbox bench-flood fuzz fuzz-short bench-reports

# .venv from requirements/api.lock (recreated when the lock changes).
api-env: $(API_STAMP)
$(API_STAMP): requirements/api.lock
	@test -x $(API_PY) || python3 -m venv $(VENV_API)
	$(API_PY) -m pip install --quiet --disable-pip-version-check -r requirements/api.lock
	@touch $@

# rasa-webchat 1.0.1 from npm, served by the switchboard (no CDN).
npm-assets: $(NPM_STAMP)
$(NPM_STAMP): package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's Chromium for the browser test (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# PostgreSQL (127.0.0.1:5432, trust auth) and Redis, started when not answering.
services:
	@$(PG_READY) || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do $(PG_READY) && break; sleep 1; done; $(PG_READY)
	@$(REDIS_READY) || (mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes \
		--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis \
		--logfile /var/log/redis/ci.log)
	@for i in $$(seq 1 30); do $(REDIS_READY) && break; sleep 1; done; $(REDIS_READY)

# Whole suite on SQLite (with the real-Rasa end-to-end and browser tests, which need the model
# `train` keeps current), then on PostgreSQL only what can differ there: the tests that reach a
# database (tests/api/conftest.py deselects pure ones), without the Rasa and browser tests.
test-api: api-env npm-assets chromium haproxy services train train-triage
	$(MAKE) --no-print-directory test-api-sqlite test-api-postgres fuzz-short fault-test-short

test-api-sqlite:
	@$(STAGE) "switchboard tests (SQLite)" -- env SWITCHBOARD_TEST_DB=sqlite $(API_PYTEST) -q

test-api-postgres:
	@$(STAGE) "switchboard tests (PostgreSQL)" -- env SWITCHBOARD_TEST_DB=postgresql \
	  $(API_PYTEST) -q -m "not rasa and not browser"

# Schemathesis against the OpenAPI schema on a throwaway instance (benchmarks/fuzz.py: its own
# temp project, database, free ports, fake Rasa, Graph and trainer; stops by itself). Last line:
# `fuzz operations=.. examples=.. server_errors=.. schema_violations=..`; fails unless both are 0.
# FUZZ_EXAMPLES: generated requests per operation and mode; FUZZ_DB=postgresql: a fresh database
# on 127.0.0.1:5432 instead of SQLite.
FUZZ_EXAMPLES ?= 50
FUZZ_DB ?= sqlite
fuzz: api-env services train-triage
	$(API_PY) -m benchmarks.fuzz --examples $(FUZZ_EXAMPLES) \
	  $(if $(filter postgresql,$(FUZZ_DB)),--postgresql)

# The short run in `make test` (1-3 minutes on a busy 2-core machine; the bound is 4).
fuzz-short:
	@$(STAGE) "fuzz (short, SQLite)" -- $(API_PY) -m benchmarks.fuzz --examples 10

# Migrate the database DATABASE_URL points at (default: SQLite under var/; local mode unless
# APP_ENV says otherwise).
db-upgrade: api-env
	APP_ENV=$${APP_ENV:-local} $(VENV_API)/bin/alembic upgrade head

# Rasa's REST channel directly vs. through the switchboard, same messages, one run
# (writes var/bench-switchboard.json; a few minutes; only 127.0.0.1 traffic).
bench-switchboard: api-env npm-assets train
	$(API_PY) -m benchmarks.switchboard

# The switchboard's own cost per REST turn against an instant fake Rasa, interleaved with the
# same turns sent to the fake Rasa directly (about a minute; 127.0.0.1 only; writes
# var/bench-switchboard-cost.json). BENCH_COST_ARGS: e.g. --baseline-root DIR --triage off.
bench-switchboard-cost: api-env
	$(API_PY) -m benchmarks.switchboard_cost $(BENCH_COST_ARGS)

# Time from a fan's urgent message to the assignee's event on the bus (no Rasa in the path;
# a few hundred messages, 127.0.0.1 only, stops by itself; writes var/bench-handoff.json).
bench-handoff: api-env
	$(API_PY) -m benchmarks.handoff

# Floods absorbed: 300 urgent web chat fans from one address and 100 wrong logins at once, next to
# ordinary fans' bot turns (own switchboard and temporary SQLite; fake instant Rasa; loopback
# source addresses 127.0.0.2-5 only; a few minutes, stops by itself; writes var/bench-flood.json).
bench-flood: api-env npm-assets
	$(API_PY) -m benchmarks.flood

# Reports on 100,000 bulk-inserted conversations, SQLite and a temporary PostgreSQL database on
# 127.0.0.1:5432 (dropped after): the summary and the reports page timed for a 30-day range
# (about 5 minutes, stops by itself; writes var/bench-reports.json).
bench-reports: api-env
	$(API_PY) -m benchmarks.reports

# The staff inbox in headless Chromium and over SSE (no Rasa in the path; 127.0.0.1 only; about a
# minute, stops by itself; writes var/bench-inbox.json): fan message -> visible in the assignee's
# open page, page weight and load time, one event reaching 50 connected staff.
bench-inbox: api-env chromium
	$(API_PY) -m benchmarks.inbox

# Refresh the committed screenshots (docs/screenshots/*.png) from the inbox and operator browser
# tests (real bot; about 8 minutes). CI never runs this: tests write to a temp dir by default.
.PHONY: screenshots
screenshots: api-env npm-assets chromium train
	INBOX_SCREENSHOTS=$(CURDIR)/docs/screenshots OPERATOR_SCREENSHOTS=$(CURDIR)/docs/screenshots \
		SWITCHBOARD_TEST_DB=sqlite $(API_PYTEST) -q tests/api/inbox/test_inbox_browser.py \
		tests/api/operator/test_console_browser.py
