"""Build an Alembic config for a database URL (used by the app, tests and `make db-upgrade`)."""

from __future__ import annotations

from alembic.config import Config

from api.settings import REPO_ROOT


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "api" / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg
