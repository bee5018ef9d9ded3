"""message language: the language the switchboard decided for each fan text message

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both backends (SQLite >= 3.35 drops a column in place): a batch
# "recreate" of messages on SQLite would drop the table, and with foreign keys on that deletes
# the rows that reference it (message flags, outbox).


def upgrade() -> None:
    op.add_column('messages', sa.Column('language', sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'language')
