"""flag kinds: staff say a message should have come to a person (with a triage label) or did
not need one, next to "the bot should have known this"

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both backends, as in 0005 (a batch "recreate" on SQLite would drop the
# table). The not-null column gets a server default, so existing flags become kind 'bot'.


def upgrade() -> None:
    op.add_column('message_flags', sa.Column('kind', sa.String(24), nullable=False,
                                             server_default='bot'))
    op.add_column('message_flags', sa.Column('label', sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column('message_flags', 'label')
    op.drop_column('message_flags', 'kind')
