"""Prometheus metrics of one switchboard process: ``GET /metrics`` (see docs/switchboard.md)."""
