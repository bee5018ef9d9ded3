"""Several switchboard replicas on one database: heartbeats, claims, leases and locks."""
