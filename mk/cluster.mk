# `make cluster`: N switchboard replicas behind HAProxy, on PostgreSQL and Redis, with Rasa (tracker
# store on PostgreSQL, lock store on Redis) and the action server, in the foreground
# (scripts/cluster.py; Ctrl-C stops it all). Settings from the environment: CLUSTER_REPLICAS=2,
# CLUSTER_PORT=8000, CLUSTER_REPLICA_BASE_PORT=8001, CLUSTER_DATABASE_URL, REDIS_URL,
# CLUSTER_RASA_TRACKER_URL, CLUSTER_RASA_LOCK_URL, CLUSTER_RASA_PROCESSES=1 (Rasa processes on
# RASA_PORT, RASA_PORT+1, ...), CLUSTER_RASA=0 (no Rasa/actions), APP_ENV
# (default local) — see README.md, "Running several switchboards".
.PHONY: cluster haproxy

# Debian's HAProxy (run in the foreground by the cluster, never as the system's daemon).
haproxy:
	@test -x /usr/sbin/haproxy || (apt-get update && apt-get install -y haproxy)

cluster: setup train $(if $(wildcard mk/triage.mk),train-triage) haproxy services
	@$(VENV_API)/bin/python scripts/cluster.py

# `make bench-cluster`: scale-out measured in one run (benchmarks/cluster.py; writes
# var/bench-cluster.json, prints the tables, stops by itself, 127.0.0.1 only; 9 minutes
# on 2 shared cores at load average 6-14, 16 at 12-19). Two clusters started by scripts/cluster.py on fresh PostgreSQL databases
# (bench_cluster_*, dropped after) and a redis-server of its own: real Rasa (Rasa's REST channel
# directly vs the balancer over 1 vs 2 replicas), then an instant fake Rasa (the switchboard tier
# alone, 1 vs 2 replicas; then one staff event to 50 inbox streams over both replicas). Settings
# from the environment (defaults): BENCH_CLUSTER_FANS=32, BENCH_CLUSTER_ROUNDS=2,
# BENCH_CLUSTER_RASA_CONVERSATIONS=1 and BENCH_CLUSTER_FAKE_CONVERSATIONS=3 (six-turn
# conversations per fan per round), BENCH_CLUSTER_SSE_CLIENTS=50, BENCH_CLUSTER_EVENTS=40,
# BENCH_CLUSTER_TRIAGE=1, BENCH_CLUSTER_PORT_BASE=0 (free ports), BENCH_CLUSTER_RASA_PORT,
# BENCH_CLUSTER_ACTION_PORT, BENCH_CLUSTER_REDIS_PORT, BENCH_CLUSTER_PG, BENCH_CLUSTER_PARTS=rasa,fake,
# BENCH_CLUSTER_JSON (see the module's docstring).
.PHONY: bench-cluster
bench-cluster: api-env train $(if $(wildcard mk/triage.mk),train-triage) haproxy services
	@$(VENV_API)/bin/python -m benchmarks.cluster
