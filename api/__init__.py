"""The switchboard: the FastAPI service that owns every fan conversation."""
