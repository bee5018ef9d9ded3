"""handoff: triage decision and timers on conversations, negative score on messages, personas

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('triage', JSON, nullable=True))
        batch_op.add_column(sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('negative', sa.Double(), nullable=True))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('persona_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('persona_id')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('negative')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('alerted_at')
        batch_op.drop_column('triage')
        batch_op.drop_column('first_response_at')
