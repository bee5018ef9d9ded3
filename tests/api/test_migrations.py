"""Alembic: upgrade and downgrade cleanly on SQLite and PostgreSQL; models match migrations."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from api.migrations.config import alembic_config
from api.models import Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


def _roundtrip(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = create_engine(url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
        command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(cfg, "head")
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_up_down(tmp_path):
    _roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_sqlite_wal_and_synchronous_normal(tmp_path):
    from sqlalchemy import text

    from api.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'w.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert (tmp_path / "var" / "w.db").exists()


@pytest.mark.postgres
def test_postgresql_up_down(pg):
    _roundtrip(pg.create("sb_migrate"))
