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


def _outbox_backfill(url: str) -> None:
    """0012: a reply stored before the outbox owned delivery, and never sent, gets its row."""
    from sqlalchemy import text

    cfg = alembic_config(url)
    command.upgrade(cfg, "0010")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            now = "2026-12-01 12:00:00+00"
            conn.execute(text("INSERT INTO fans (id, created_at) VALUES (1, :now)"), {"now": now})
            conn.execute(text(
                "INSERT INTO channel_identities (id, fan_id, channel, external_id, created_at) "
                "VALUES (1, 1, 'messenger', 'psid-old', :now)"), {"now": now})
            conn.execute(text(
                "INSERT INTO conversations (id, fan_id, identity_id, channel, status, reasons, "
                "version, created_at, updated_at) VALUES (1, 1, 1, 'messenger', 'bot', '[]', 1, "
                ":now, :now)"), {"now": now})
            for mid, status in ((1, "pending"), (2, "sent")):
                conn.execute(text(
                    "INSERT INTO messages (id, uid, conversation_id, channel, kind, sender_type, "
                    "text, relay_attempts, delivery_status, created_at) VALUES (:id, :uid, 1, "
                    "'messenger', 'outgoing', 'bot', 'hi', 0, :status, :now)"),
                    {"id": mid, "uid": f"u{mid}", "status": status, "now": now})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT message_id, conversation_id, recipient, status FROM outbox")).all()
        assert [tuple(r) for r in rows] == [(1, 1, "psid-old", "pending")]
    finally:
        engine.dispose()


def test_sqlite_outbox_backfill(tmp_path):
    _outbox_backfill(f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.postgres
def test_postgresql_outbox_backfill(pg):
    _outbox_backfill(pg.create("sb_backfill"))
