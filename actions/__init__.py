"""Custom actions for the fan-care bot (run by `rasa run actions`)."""
