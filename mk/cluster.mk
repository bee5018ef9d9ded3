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
