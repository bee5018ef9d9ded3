"""report indexes: conversations by when they started (api/reports selects a date range)

Revision ID: 0011
Revises: 0012
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# Issue 15 says down_revision '0008'; on this branch it follows 0012 (CSAT) so that there is one
# head. The merger re-chains it.
revision: str = '0011'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_conversations_created_at', 'conversations', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_conversations_created_at', table_name='conversations')
