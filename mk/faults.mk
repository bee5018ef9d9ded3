# The fault test (benchmarks/faults.py): the cluster (two replicas, real Rasa, its own
# redis-server on a spare port, a fake Graph, fresh PostgreSQL databases dropped after) under a
# continuous load of web chat, REST and Messenger fans and staff replies, while one replica,
# Rasa and Redis are killed and every web chat socket is cut. Last line:
# `faults scenarios=.. sent=.. stored=.. answered=.. delivered=.. lost=.. duplicated=..`;
# fails when anything is lost, duplicated, out of order or owned twice. APP_ENV from the
# environment (default local). FAULTS_LOAD_S: seconds of load per scenario (120; short: 25).
.PHONY: fault-test fault-test-short

fault-test: setup train $(if $(wildcard mk/triage.mk),train-triage) haproxy services
	@$(API_PY) -m benchmarks.faults

# The shortened form in `make test` (test-api): 20 s of load per scenario, about 3 minutes on a
# quiet 2-core machine (the issue's bound is 8).
fault-test-short:
	@$(STAGE) "fault test (short)" -- env FAULTS_SHORT=1 $(API_PY) -m benchmarks.faults
