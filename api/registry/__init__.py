"""The model registry: every bot model the desk has trained, scored, served or retired."""
