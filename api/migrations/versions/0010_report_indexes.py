"""report indexes: conversations by when they started (api/reports selects a date range)

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_conversations_created_at', 'conversations', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_conversations_created_at', table_name='conversations')
