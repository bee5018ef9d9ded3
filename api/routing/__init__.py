"""Routing a handed-off thread to a named person: the pure policy and the writes it causes."""
