"""Benchmark: Rasa's REST channel directly vs. through the switchboard.

Run by `make bench-switchboard`.
"""
